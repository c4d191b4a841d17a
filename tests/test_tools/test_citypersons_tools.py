"""The CityPersons tiny configs trained and tested, and the offline scorer."""
import importlib.util
import json
import math
import os.path as osp
import pickle
import re
import sys

import numpy as np
import pytest
import torch
from conftest import run as _run

sys.path.insert(
    0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                'test_evaluation', 'test_functional'))

from test_citypersons_mr import HAND_ANNS, HAND_MR, HAND_PREDS  # noqa: E402
from test_citypersons_mr import write_gt  # noqa: E402

from mmlla.evaluation.functional import (  # noqa: E402
    UnsafePickleError, format_citypersons_row)

TWINS = [
    'configs/citypersons/lla_tiny_synthetic-citypersons.py',
    'configs/citypersons/fcos_tiny_synthetic-citypersons.py',
    'configs/citypersons/poto-3dmf-aux_tiny_synthetic-citypersons.py',
]
SETUP_NAMES = list(HAND_MR)


@pytest.fixture(scope='module')
def city_root(tmp_path_factory):
    from mmlla.testing import make_synthetic_citypersons
    root = str(tmp_path_factory.mktemp('synthetic_citypersons'))
    make_synthetic_citypersons(root, 4, 3, seed=0, show_progress=False)
    return root + '/'


@pytest.fixture(scope='module')
def tool():
    path = osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'tools', 'analysis_tools', 'eval_citypersons.py')
    spec = importlib.util.spec_from_file_location('eval_citypersons', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_opts(root):
    ann = f'{root}annotations/val_gt.json'
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'
    ]


def metrics_of(log):
    """The ``citypersons/MR_<setup>`` values a run logged."""
    found = dict(re.findall(r'citypersons/MR_(\w+): (nan|[\d.]+)', log))
    return {k: float(v) for k, v in found.items()}


@pytest.mark.parametrize('config', TWINS[1:])
def test_tiny_twin_trains_and_validates_in_process(config, city_root,
                                                   repo_root, tmp_path):
    """Two iterations then validation with the CityPersons metric."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(repo_root, config))
    cfg.merge_from_dict({
        k: v
        for k, v in (o.split('=', 1) for o in data_opts(city_root))
    })
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.default_hooks.checkpoint.interval = 100
    cfg.default_hooks.logger.interval = 1
    cfg.param_scheduler = []
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    assert set(metrics) == {f'citypersons/MR_{s}' for s in SETUP_NAMES}
    assert all(math.isnan(v) or 0 <= v <= 1 for v in metrics.values())
    assert runner.iter == 2


def test_train_test_and_score_offline(city_root, repo_root, tmp_path, tool):
    """tools/train.py, tools/test.py --out, then the offline scorer gives the
    numbers the test run logged."""
    work_dir = tmp_path / 'lla'
    proc = _run(repo_root, [
        sys.executable, 'tools/train.py', TWINS[0], '--work-dir',
        str(work_dir), '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=3', 'randomness.seed=0',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', *data_opts(city_root)
    ])
    assert 'Iter(train) [2/2]' in proc.stdout + proc.stderr
    out = tmp_path / 'results.pkl'
    proc = _run(repo_root, [
        sys.executable, 'tools/test.py', TWINS[0],
        str(work_dir / 'iter_2.pth'), '--work-dir',
        str(tmp_path / 'test'), '--out',
        str(out), '--cfg-options', *data_opts(city_root)
    ])
    logged = metrics_of(proc.stdout + proc.stderr)
    assert set(logged) == set(SETUP_NAMES), proc.stdout[-2000:]
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 3  # one per validation image
    outs = tool.main([f'{city_root}annotations/val_gt.json', str(out)])
    mr = outs['results.pkl']['MR']
    for setup, value in logged.items():
        if math.isnan(value):
            assert math.isnan(mr[setup])
        else:  # the log rounds to 4 decimals
            assert mr[setup] == pytest.approx(value, abs=1e-4)
    # tools/test.py printed the summary row of the usual setups
    assert format_citypersons_row(
        {f'citypersons/MR_{s}': v for s, v in mr.items()}) in proc.stdout


def coco_results(preds, category=None):
    dets = []
    for p in preds:
        for (x1, y1, x2, y2), s in zip(p.bboxes.tolist(), p.scores.tolist()):
            det = dict(image_id=p.img_id, bbox=[x1, y1, x2 - x1, y2 - y1],
                       score=s)
            if category is not None:
                det['category_id'] = category
            dets.append(det)
    return dets


def test_offline_scorer_json_pickle_and_plots(tmp_path, tool, capsys):
    gt = write_gt(tmp_path / 'gt.json', 4, HAND_ANNS)
    res = tmp_path / 'dets.json'
    res.write_text(json.dumps(coco_results(HAND_PREDS, category=1)))
    pkl = tmp_path / 'dets.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump([
            dict(img_id=p.img_id, ori_shape=(1024, 2048), pred_instances=dict(
                bboxes=torch.from_numpy(p.bboxes).float(),
                scores=torch.from_numpy(p.scores).float(),
                labels=torch.zeros(len(p.scores), dtype=torch.long)))
            for p in HAND_PREDS
        ], f)
    outs = tool.main([
        gt, str(res), str(pkl), '--labels', 'json', 'pickle', '--plot-dir',
        str(tmp_path / 'plots')
    ])
    for name in ('json', 'pickle'):
        for setup, expected in HAND_MR.items():
            assert outs[name]['MR'][setup] == pytest.approx(expected,
                                                            abs=1e-7)
    text = capsys.readouterr().out
    assert '| results | Reasonable | Small | Heavy | Partial | Bare | All |' \
        in text
    reasonable = f'{100 * HAND_MR["Reasonable"]:.2f}'
    assert f'| json | {reasonable} | 50.00 | 0.00 | 100.00 |' in text
    for setup in SETUP_NAMES:
        assert osp.getsize(tmp_path / 'plots' / f'{setup}.png') > 1000
    # a subset of setups
    outs = tool.main([gt, str(res), '--setups', 'Heavy'])
    assert list(outs['dets.json']['MR']) == ['Heavy']


class Evil:

    def __reduce__(self):
        return (print, ('pwned', ))


@pytest.mark.parametrize('content, message', [
    ('{"image_id": 1}', 'a JSON list of detections'),
    ('[{"image_id": 1, "bbox": [0, 0, 1, 1]}]', r'detection 0: needs'),
    ('[{"image_id": "1", "bbox": [0, 0, 1, 1], "score": 1}]',
     'image id must be an integer'),
    ('[{"image_id": 1, "bbox": [0, 0, 1], "score": 1}]', r'"bbox" must be'),
    ('[{"image_id": 1, "bbox": [0, 0, 1, 1], "score": NaN}]',
     'detection 0: detection 0 is not finite'),
    ('[{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 1, '
     '"category_id": 2}]', '"category_id" must be 1'),
    ('[{"image_id": 9, "bbox": [0, 0, 1, 1], "score": 1}]',
     'image id 9 is not in the annotation file'),
    ('[{"image_id": 1,\n "bbox": [0, 0, 1, 1], "score": }]',
     r'dets.json:2:33: not valid JSON'),
])
def test_offline_scorer_refusals(tmp_path, tool, content, message):
    gt = write_gt(tmp_path / 'gt.json', 4, HAND_ANNS)
    res = tmp_path / 'dets.json'
    res.write_text(content)
    with pytest.raises(ValueError, match=message):
        tool.main([gt, str(res)])


def test_offline_scorer_refuses_unsafe_pickles(tmp_path, tool, capsys):
    gt = write_gt(tmp_path / 'gt.json', 4, HAND_ANNS)
    pkl = tmp_path / 'evil.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump([dict(img_id=1, pred_instances=Evil())], f)
    with pytest.raises(UnsafePickleError):
        tool.main([gt, str(pkl)])
    assert 'pwned' not in capsys.readouterr().out
    with open(pkl, 'wb') as f:
        pickle.dump([dict(img_id=1, pred_instances=dict(
            bboxes=np.zeros((1, 4)), scores=np.ones(1)))] * 2, f)
    with pytest.raises(ValueError, match='image id 1 has predictions twice'):
        tool.main([gt, str(pkl)])
