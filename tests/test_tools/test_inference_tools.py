"""Inference from Python (DetInferencer), demo/image_demo.py, browse_dataset,
show_assignments."""
import json
import os
import os.path as osp
import sys

import numpy as np
import torch
from conftest import FCOS_TINY, data_opts, run
from PIL import Image


def test_det_inferencer_with_our_config(trained, synthetic_root):
    import mmlla  # noqa: F401
    from mmdet.apis import DetInferencer
    from mmengine.config import Config
    cfg = Config.fromfile(FCOS_TINY)
    # a 3-iteration model scores little above the usual 0.05
    cfg.model.test_cfg.score_thr = 0.0
    inferencer = DetInferencer(
        model=cfg, weights=osp.join(trained, 'iter_3.pth'), device='cpu',
        show_progress=False)
    img = osp.join(synthetic_root, 'Images', 'synth_val_0_000000.jpg')
    result = inferencer(img, return_datasamples=True)
    pred = result['predictions'][0].pred_instances
    # the tiny configs keep at most 300 detections per image
    assert 0 < len(pred.bboxes) <= 300
    assert pred.bboxes.shape[1] == 4
    assert (pred.labels == 0).all()
    scores = pred.scores.numpy()
    assert (np.diff(scores) <= 1e-6).all(), 'sorted by score'


def test_image_demo_writes_picture(trained, synthetic_root, repo_root,
                                   tmp_path):
    img = osp.join(synthetic_root, 'Images', 'synth_val_0_000001.jpg')
    run(repo_root, [
        sys.executable, 'demo/image_demo.py', img, FCOS_TINY, '--weights',
        osp.join(trained, 'iter_3.pth'), '--out-dir',
        str(tmp_path), '--device', 'cpu', '--save-pred'
    ])
    vis = tmp_path / 'vis' / 'synth_val_0_000001.jpg'
    with Image.open(vis) as pic:
        assert pic.size == (320, 240)
    with open(tmp_path / 'preds' / 'synth_val_0_000001.json') as f:
        preds = json.load(f)
    assert len(preds['bboxes']) == len(preds['scores'])


def _load_script(repo_root, rel):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(rel))[0], osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_browse_dataset_draws_ignore_regions(synthetic_root, repo_root,
                                             tmp_path):
    browse = _load_script(repo_root, 'tools/analysis_tools/browse_dataset.py')
    out = tmp_path / 'browse'
    written = browse.main([
        osp.join(repo_root, FCOS_TINY), '--output-dir',
        str(out), '--num', '4', '--not-show', '--split', 'val',
        '--cfg-options', *data_opts(synthetic_root)
    ])
    assert len(written) == 4 and all(osp.exists(f) for f in written)

    # Ignore regions are painted, and only inside their boxes (+ label).
    from mmdet.registry import DATASETS, VISUALIZERS
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(repo_root, FCOS_TINY))
    cfg.merge_from_dict(dict(a.split('=', 1) for a in data_opts(
        synthetic_root)))
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    k = next(i for i in range(len(dataset))
             if len(dataset[i]['data_samples'].ignored_instances))
    data = dataset[k]
    vis = VISUALIZERS.build(cfg.visualizer)
    with_ign = browse.draw_sample(vis, data, [(220, 20, 60)]).astype(int)
    del data['data_samples'].ignored_instances
    without = browse.draw_sample(vis, data, [(220, 20, 60)]).astype(int)
    changed = np.abs(with_ign - without).sum(-1) > 0
    assert changed.any()
    boxes = dataset[k]['data_samples'].ignored_instances.bboxes.tensor
    inside = np.zeros_like(changed)
    for x1, y1, x2, y2 in boxes.round().int().tolist():
        # the box, its anti-aliased dashed edge and the label at its corner
        inside[max(y1 - 5, 0):y2 + 12, max(x1 - 5, 0):x2 + 40] = True
    assert not (changed & ~inside).any()


def test_show_assignments_draws_each_assigner(trained, synthetic_root,
                                              repo_root, tmp_path):
    tool = _load_script(repo_root, 'tools/analysis_tools/show_assignments.py')
    out = tmp_path / 'assign.png'
    results = tool.main([
        osp.join(repo_root, FCOS_TINY),
        osp.join(trained, 'iter_3.pth'), '--image', 'synth_val_0_000000.jpg',
        '--out',
        str(out), '--assigners', 'lla', 'poto', 'fcos', '--cfg-options',
        *data_opts(synthetic_root)
    ])
    with Image.open(out) as pic:
        assert pic.size[0] > 2 * pic.size[1]  # three panels side by side
    with open(osp.join(synthetic_root, 'annotation_val.odgt')) as f:
        rec = json.loads(f.readline())
    num_people = sum(g['tag'] == 'person' for g in rec['gtboxes'])
    poto = results['poto'].gt_inds
    # one-to-one: every person exactly one point
    assert sorted(poto[(poto > 0) & (poto <= num_people)].tolist()) == list(
        range(1, num_people + 1))
    lla = results['lla'].gt_inds
    # every row (person or ignore region) takes 10 points; a contested point
    # may go to a row that did not take it, so a person can end with more
    # than 10, but never more points are assigned than 10 per row
    num_rows = len(rec['gtboxes'])
    assert 0 < int((lla != 0).sum()) <= 10 * num_rows
    assert (results['fcos'].gt_inds > 0).sum() > num_people
