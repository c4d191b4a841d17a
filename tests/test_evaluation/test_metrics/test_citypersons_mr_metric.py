import math
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch

sys.path.insert(
    0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                'test_functional'))

from test_citypersons_mr import (HAND_ANNS, HAND_MR, HAND_PREDS,  # noqa: E402
                                 write_gt)

from mmdet.registry import METRICS  # noqa: E402

import mmlla  # noqa: E402,F401
from mmlla.evaluation import CityPersonsMRMetric  # noqa: E402

KEYS = [f'citypersons/MR_{s}' for s in HAND_MR]


def samples(preds, tensors=True):
    conv = torch.from_numpy if tensors else np.asarray
    return [
        dict(img_id=p.img_id, ori_shape=(1024, 2048),
             pred_instances=dict(bboxes=conv(p.bboxes.astype(np.float32)),
                                 scores=conv(p.scores.astype(np.float32))))
        for p in preds
    ]


def run(ann_file, preds, **kwargs):
    metric = METRICS.build(
        dict(type='CityPersonsMRMetric', ann_file=ann_file, **kwargs))
    batch = samples(preds)
    for start in range(0, len(batch), 2):
        metric.process(None, batch[start:start + 2])
    return metric, metric.evaluate(len(batch))


def test_every_setup_of_the_hand_case(tmp_path):
    f = write_gt(tmp_path / 'gt.json', 4, HAND_ANNS)
    metric, out = run(f, HAND_PREDS)
    assert isinstance(metric, CityPersonsMRMetric)
    assert list(out) == KEYS
    for setup, expected in HAND_MR.items():
        assert out[f'citypersons/MR_{setup}'] == pytest.approx(expected,
                                                               abs=1e-7)


def test_compact_results_that_survive_pickling(tmp_path):
    f = write_gt(tmp_path / 'gt.json', 4, HAND_ANNS)
    metric = CityPersonsMRMetric(f, setups=['Reasonable', 'Heavy'])
    metric.process(None, samples(HAND_PREDS))
    # one (id, boxes, scores) per image, as collect_results pickles it
    img_id, boxes, scores = metric.results[0]
    assert img_id == 1 and boxes.shape == (1, 4) and scores.shape == (1, )
    results = pickle.loads(pickle.dumps(metric.results))
    out = metric.compute_metrics(results)
    assert set(out) == {'MR_Reasonable', 'MR_Heavy'}
    assert out['MR_Reasonable'] == pytest.approx(HAND_MR['Reasonable'])


def test_missing_images_and_setups_without_ground_truth(tmp_path):
    # only image 1 predicted; no ground truth at all in Heavy (NaN)
    f = write_gt(tmp_path / 'gt.json', 3, HAND_ANNS[:2])
    _, out = run(f, HAND_PREDS[:1])
    # P1 found at FPPI 0, P6 never: 1/2 in Reasonable
    assert out['citypersons/MR_Reasonable'] == pytest.approx(0.5)
    assert math.isnan(out['citypersons/MR_Heavy'])


def test_refusals(tmp_path):
    f = write_gt(tmp_path / 'gt.json', 4, HAND_ANNS)
    with pytest.raises(ValueError, match='setups'):
        CityPersonsMRMetric(f, setups=['Reasonable', 'Occluded'])
    with pytest.raises(ValueError, match='iou_thr'):
        CityPersonsMRMetric(f, iou_thr=1.0)
    with pytest.raises(ValueError, match='max_dets'):
        CityPersonsMRMetric(f, max_dets=0)
    metric = CityPersonsMRMetric(f)
    bad = samples(HAND_PREDS[:1])
    bad[0]['img_id'] = 'frankfurt_000000_000294'
    with pytest.raises(ValueError, match='img_id must be the integer id'):
        metric.process(None, bad)
    bad = samples(HAND_PREDS[:1])
    bad[0]['pred_instances']['scores'] = torch.tensor([float('inf')])
    with pytest.raises(ValueError,
                       match='prediction for image 1: detection 0 is not'):
        metric.process(None, bad)
    bad = samples(HAND_PREDS[:1])
    bad[0]['img_id'] = 9
    metric.process(None, bad)
    with pytest.raises(ValueError, match='image id 9 .* not in the annot'):
        metric.evaluate(1)


def test_warns_on_images_without_prediction(tmp_path, monkeypatch):
    from mmengine.logging import MMLogger
    f = write_gt(tmp_path / 'gt.json', 3, HAND_ANNS[:2])
    seen = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'warning',
                        seen.append)
    metric = CityPersonsMRMetric(f)
    metric.compute_metrics([])
    assert any('3 of the 3 images' in w and 'no prediction' in w
               for w in seen), seen
    seen.clear()
    metric.process(None, samples(HAND_PREDS[:1]))
    metric.compute_metrics(metric.results)
    assert any('2 of the 3 images' in w for w in seen), seen
