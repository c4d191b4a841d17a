"""One reading of a test-loop data sample for the metrics and the offline
tools (Prediction.from_data_sample, CityPersonsPrediction.from_data_sample)."""
import numpy as np
import pytest
import torch

from mmlla.evaluation.functional import CityPersonsPrediction, Prediction


def _sample(**overrides):
    sample = dict(img_id=7, ori_shape=(30, 40, 3), img_shape=(60, 80),
                  pred_instances=dict(
                      bboxes=torch.tensor([[1., 2, 11, 22], [0, 0, 5, 5]]),
                      scores=torch.tensor([.9, .4]),
                      labels=torch.zeros(2, dtype=torch.long)))
    sample.update(overrides)
    return sample


def test_crowdhuman_prediction_from_data_sample():
    pred = Prediction.from_data_sample(_sample())
    assert pred.img_id == '7' and pred.img_shape == (30, 40)
    np.testing.assert_array_equal(pred.bboxes,
                                  [[1, 2, 11, 22], [0, 0, 5, 5]])
    assert pred.bboxes.dtype == np.float32
    np.testing.assert_array_equal(pred.scores, np.float32([.9, .4]))


@pytest.mark.parametrize('overrides,match', [
    (dict(pred_instances=dict(bboxes=torch.ones(1, 4))),
     r"here: not a detection result .*KeyError\('scores'\)"),
    (dict(ori_shape=None), r'here: not a detection result .*TypeError'),
    (dict(ori_shape=(0, 40)), r'here: the image size must be two integers'),
    (dict(pred_instances=dict(bboxes=torch.ones(2, 4),
                              scores=torch.tensor([1., float('nan')]))),
     r'here: detection 1 has a non-finite score'),
])
def test_crowdhuman_prediction_refusals_name_where(overrides, match):
    with pytest.raises(ValueError, match=match):
        Prediction.from_data_sample(_sample(**overrides), 'here')


def test_citypersons_prediction_from_data_sample():
    pred = CityPersonsPrediction.from_data_sample(
        _sample(img_id=np.int64(7)))
    assert pred.img_id == 7 and type(pred.img_id) is int
    assert pred.bboxes.dtype == np.float64 and pred.bboxes.shape == (2, 4)
    np.testing.assert_array_equal(pred.scores, np.float32([.9, .4]))
    assert CityPersonsPrediction.from_data_sample(
        _sample(img_id=torch.tensor(3))).img_id == 3
    with pytest.raises(ValueError, match=r"here: img_id must be the integer "
                       r"id of the annotation file, got '7'"):
        CityPersonsPrediction.from_data_sample(_sample(img_id='7'), 'here')
    with pytest.raises(ValueError, match=r'here: not a detection result'):
        CityPersonsPrediction.from_data_sample(dict(img_id=7), 'here')
    with pytest.raises(ValueError,
                       match=r'prediction for image 7: 2 boxes but scores'):
        CityPersonsPrediction.from_data_sample(_sample(pred_instances=dict(
            bboxes=torch.ones(2, 4), scores=torch.ones(3))))
