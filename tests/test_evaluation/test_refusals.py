"""What cannot be scored honestly is refused, with the image ID (the
metric and the functions). The offline tool's refusals are in
tests/test_tools/test_eval_crowdhuman_refusals.py."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from crowdhuman_cases import data_samples, random_case, write_odgt  # noqa

from mmlla.evaluation import CrowdHumanMRMetric  # noqa: E402
from mmlla.evaluation.functional import (Prediction,  # noqa: E402
                                         check_iou_thr, check_prediction,
                                         evaluate_crowdhuman,
                                         load_crowdhuman_gt)


# --------------------------------------------------- the shared checks

SIZE = 'the image size must be two integers >= 1'


@pytest.mark.parametrize('boxes,scores,shape,match', [
    ([[0, 0, np.nan, 5]], [.5], (9, 9), r'detection 0 has a non-finite box'),
    ([[0, 0, 5, 5], [0, 0, np.inf, 5]], [.5, .4], (9, 9),
     r'detection 1 has a non-finite box'),
    ([[0, 0, 5, 5]], [np.nan], (9, 9), r'detection 0 has a non-finite score'),
    ([[0, 0, 5, 5]], [-np.inf], (9, 9), 'detection 0 has a non-finite score'),
    ([[0, 0, 5, 5, 1]], [.5], (9, 9), r'boxes must be \(D, 4\)'),
    ([0, 0, 5, 5], [.5], (9, 9), r'boxes must be \(D, 4\).*shape \(4,\)'),
    ([[0, 0, 5, 5]], [[.5]], (9, 9), r'scores must be \(D,\)'),
    ([[0, 0, 5, 5]], [.5, .4], (9, 9), '1 boxes but 2 scores'),
    ([['0', '0', '5', '5']], [.5], (9, 9), 'boxes must be numbers'),
    ([[0, 0, 5, 5]], [True], (9, 9), 'scores must be numbers'),
    ([[0, 0, 5, 5]], [.5], (0, 9), SIZE),
    ([[0, 0, 5, 5]], [.5], (9.5, 9), SIZE),
    ([[0, 0, 5, 5]], [.5], (float('nan'), 9), SIZE),
    ([[0, 0, 5, 5]], [.5], 9, SIZE),
])
def test_check_prediction_refuses(boxes, scores, shape, match):
    with pytest.raises(ValueError, match=r"image 'x7': " + match):
        check_prediction('x7', shape, np.asarray(boxes), np.asarray(scores))


def test_check_prediction_accepts_and_keeps_dtype():
    p = check_prediction(5, (10.0, 20), torch.zeros(2, 4),
                         torch.tensor([.5, .4]))
    assert p.img_id == '5' and p.img_shape == (10, 20)
    assert p.bboxes.dtype == np.float32 and p.bboxes.shape == (2, 4)
    empty = check_prediction('e', (3, 4), np.zeros(0), np.zeros((0, 1)))
    assert empty.bboxes.shape == (0, 4) and empty.scores.shape == (0, )


@pytest.mark.parametrize('thr', [0, 1, 1.5, -0.1, float('nan'), 'x'])
def test_iou_thr_outside_open_unit_interval(thr, tmp_path):
    with pytest.raises(ValueError, match=r'iou_thr must be .*\(0, 1\)'):
        check_iou_thr(thr)
    f = write_odgt(tmp_path / 'gt.odgt', [dict(ID=1, gtboxes=[])])
    with pytest.raises(ValueError, match='iou_thr'):
        CrowdHumanMRMetric(f, iou_thr=thr)
    with pytest.raises(ValueError, match='iou_thr'):
        evaluate_crowdhuman(load_crowdhuman_gt(f), [], iou_thr=thr)
    assert check_iou_thr(0.5) == 0.5 and check_iou_thr(0.999) == 0.999


def test_metric_refuses_unscorable_predictions(tmp_path):
    records, preds = random_case(np.random.default_rng(2), 3)
    f = write_odgt(tmp_path / 'gt.odgt', records)
    img_id, shape, boxes, scores = preds[1]
    boxes, scores = boxes.copy(), scores.copy()
    if not len(scores):
        boxes, scores = np.ones((1, 4), np.float32), np.ones(1, np.float32)
    scores[-1] = np.nan
    metric = CrowdHumanMRMetric(f)
    with pytest.raises(ValueError, match=rf"prediction for image '{img_id}'"
                       r': detection \d+ has a non-finite score'):
        metric.process(None, data_samples([(img_id, shape, boxes, scores)]))
    with pytest.raises(ValueError, match=r'2 boxes but 1 scores'):
        metric.process(None, data_samples([
            (img_id, shape, np.ones((2, 4), np.float32),
             np.ones(1, np.float32))]))
    # compute_metrics checks too (results built by other code)
    with pytest.raises(ValueError, match=r"image 'img00000': .*non-finite"):
        evaluate_crowdhuman(load_crowdhuman_gt(f), [Prediction(
            'img00000', (10, 10), np.full((1, 4), np.inf), np.ones(1))])


def test_metric_warns_on_empty_and_partial_results(tmp_path, monkeypatch):
    from mmengine.logging import MMLogger
    records, preds = random_case(np.random.default_rng(3), 4)
    f = write_odgt(tmp_path / 'gt.odgt', records)
    logger = MMLogger.get_current_instance()
    seen = []
    monkeypatch.setattr(logger, 'warning', seen.append)
    metric = CrowdHumanMRMetric(f)
    out = metric.compute_metrics([])
    assert (out['AP50'], out['mMR'], out['recall']) == (0.0, 1.0, 0.0)
    assert any('4 of the 4 images' in w and 'no prediction' in w
               for w in seen), seen
    metric.compute_metrics([tuple(p) for p in preds[:3]])
    assert any('1 of the 4 images' in w for w in seen), seen
