import json
import pickle

import numpy as np
import pytest
import torch

from eval_tool_cases import (  # noqa: F401 (the fixture tool)
    random_case, tool, write_odgt)

from mmlla.evaluation import CrowdHumanMRMetric


@pytest.fixture
def case(tmp_path):
    records, preds = random_case(np.random.default_rng(21), 3)
    gt = write_odgt(tmp_path / 'gt.odgt', records)
    # tools/test.py --out: a list of dicts holding CPU tensors.
    pkl = tmp_path / 'dets.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump([
            dict(img_id=i, ori_shape=s, img_shape=(1, 1), pred_instances=dict(
                bboxes=torch.from_numpy(b), scores=torch.from_numpy(sc),
                labels=torch.zeros(len(sc), dtype=torch.long)))
            for i, s, b, sc in preds
        ], f)
    metric = CrowdHumanMRMetric(gt)
    expected = metric.compute_metrics([tuple(p) for p in preds])
    return tmp_path, gt, str(pkl), records, preds, expected


def crowddet_records(preds, with_size=True):
    out = []
    for img_id, (h, w), boxes, scores in preds:
        rec = dict(ID=img_id, dtboxes=[
            dict(box=[float(b[0]), float(b[1]), float(b[2] - b[0]),
                      float(b[3] - b[1])], score=float(s), tag=1)
            for b, s in zip(boxes, scores)])
        if with_size:
            rec.update(height=h, width=w)
        out.append(rec)
    return out


def write_images(img_dir, preds):
    """Blank images of the predictions' sizes, ``<ID>.jpg``."""
    from PIL import Image
    img_dir.mkdir(exist_ok=True)
    for img_id, (h, w), _, _ in preds:
        Image.new('RGB', (w, h)).save(img_dir / f'{img_id}.jpg')
    return str(img_dir)


def test_pickle_and_crowddet_files_with_plot(tool, case, capsys):
    tmp_path, gt, pkl, _, preds, expected = case
    odgt = write_odgt(tmp_path / 'dets.odgt', crowddet_records(preds))
    plot = tmp_path / 'mr.png'
    img_dir = write_images(tmp_path / 'Images', preds)
    outs = tool.main([gt, pkl, odgt, '--plot', str(plot), '--img-dir',
                      img_dir])
    for out in outs.values():
        for key in ('AP50', 'mMR', 'recall'):
            # xywh -> xyxy in float64 may move a box by 1 ulp: same matches
            assert out[key] == pytest.approx(expected[key], abs=1e-12)
    printed = capsys.readouterr().out
    assert f'| dets.pkl | 3 | {100 * expected["AP50"]:.2f} | ' in printed
    assert f'| dets.odgt | 3 | {100 * expected["AP50"]:.2f} | ' in printed
    assert printed.count('| images |\n') == 2  # sizes from the images
    assert plot.stat().st_size > 1000
    with open(plot, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_json_list_sizes_from_images_and_options(tool, case, capsys):
    from PIL import Image
    tmp_path, gt, _, _, preds, _ = case
    img_dir = tmp_path / 'Images'
    img_dir.mkdir()
    for img_id, (h, w), _, _ in preds:
        Image.new('RGB', (w, h)).save(img_dir / f'{img_id}.jpg')
    js = tmp_path / 'dets.json'
    js.write_text(json.dumps(crowddet_records(preds, with_size=False)))
    outs = tool.main([gt, str(js), '--img-dir', str(img_dir), '--body',
                      'visible', '--iou-thr', '0.6', '--mr-range', '-4'])
    expected = CrowdHumanMRMetric(
        gt, body='visible', iou_thr=0.6,
        mr_range='-4').compute_metrics([tuple(p) for p in preds])
    assert outs['dets.json']['AP50'] == pytest.approx(expected['AP50'],
                                                      abs=1e-12)
    assert outs['dets.json']['mMR'] == pytest.approx(expected['mMR'],
                                                     abs=1e-12)
    # without --img-dir the missing sizes are a clear error
    with pytest.raises(ValueError, match='no "height"/"width".*--img-dir'):
        tool.main([gt, str(js)])


def test_unknown_image_id_names_id_and_file(tool, case):
    tmp_path, gt, _, _, preds, _ = case
    recs = crowddet_records(preds)
    recs[1]['ID'] = 'not-there'
    bad = write_odgt(tmp_path / 'bad.odgt', recs)
    with pytest.raises(ValueError, match=r"bad\.odgt: image ID 'not-there' "
                       r'is not in the annotation file .*gt\.odgt'):
        tool.main([gt, bad, '--trust-result-sizes'])


def test_images_missing_from_a_results_file_count_without_detections(
        tool, case, capsys):
    """§6: FPPI divides by the images of the GT file: an image the results
    file does not list is an image without detections."""
    tmp_path, gt, _, _, preds, _ = case
    part = write_odgt(tmp_path / 'part.odgt', crowddet_records(preds[:2]))
    full = write_odgt(tmp_path / 'full.odgt', crowddet_records(
        preds[:2] + [(preds[2][0], preds[2][1], np.zeros((0, 4)),
                      np.zeros(0))]))
    outs = tool.main([gt, part, full, '--trust-result-sizes'])
    printed = capsys.readouterr().out
    assert ('Warning: 1 of the 3 images of' in printed
            and 'no prediction in' in printed and '(2 have)' in printed)
    assert outs['part.odgt']['num_imgs'] == 3
    for key in ('AP50', 'mMR', 'recall', 'num_gts'):
        assert outs['part.odgt'][key] == outs['full.odgt'][key]
