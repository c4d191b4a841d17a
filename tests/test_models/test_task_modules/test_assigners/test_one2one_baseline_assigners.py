"""The hand-crafted one-to-one baselines (Anchor, Center, Foreground loss)
and the FCOS rule, on hand-computed tiny cases."""
import math

import pytest
import torch
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from mmlla.models.task_modules.assigners import (FCOSStyleAssigner,
                                                 ForegroundLossAssigner,
                                                 One2OneAnchorAssigner,
                                                 One2OneCenterAssigner)


def two_level_points():
    """Level 0: stride 8, 4x4 points; level 1: stride 16, 2x2 points."""
    pts = []
    for n, s in ((4, 8), (2, 16)):
        for j in range(n):
            for i in range(n):
                pts.append([(i + 0.5) * s, (j + 0.5) * s, s, s])
    return torch.tensor(pts)


def gts(boxes, labels=None):
    boxes = torch.tensor(boxes, dtype=torch.float32)
    if labels is None:
        labels = [0] * len(boxes)
    return InstanceData(bboxes=boxes, labels=torch.tensor(labels))


def test_anchor_baseline_highest_iou():
    priors = two_level_points()
    # anchors: level 0 side 32 centred on (4+8i, 4+8j); level 1 side 64
    assigner = One2OneAnchorAssigner(anchor_scale=4)
    anchors = assigner.point_anchors(priors)
    assert anchors[0].tolist() == [-12., -12., 20., 20.]
    assert anchors[16].tolist() == [-24., -24., 40., 40.]
    # GT exactly anchor of point 5 (centre (12, 12)) -> IoU 1
    g = gts([[-4., -4., 28., 28.], [-24., -24., 40., 40.],
             [-3., -3., 28., 28.]])
    res = assigner.assign(InstanceData(priors=priors), g)
    # GT0 and GT2 both prefer point 5; GT0 has IoU 1 and wins; GT1 takes
    # anchor 16 (IoU 1); GT2 gets nothing
    assert res.gt_inds[5] == 1 and res.gt_inds[16] == 2
    assert (res.gt_inds > 0).sum() == 2
    assert res.max_overlaps[5] == pytest.approx(1.0)


def test_center_baseline_nearest_point_per_level_and_ranges():
    priors = two_level_points()
    num_level = [16, 4]
    assigner = One2OneCenterAssigner(regress_ranges=((-1, 10), (10, 1e8)))
    # GT A [7, 7, 19, 19], centre (13, 13): nearest level-0 point (12, 12)
    # (index 5), max distance 7 -> in level 0's range; nearest level-1 point
    # (8, 8) (index 16), max distance 11 -> in level 1's range.
    # GT B [4, 4, 36, 36], centre (20, 20): level-0 (20, 20) (index 10) has
    # max distance 16 -> out; level-1 (24, 24) (index 19), 20 -> in.
    # GT C [0, 0, 20, 20], centre (10, 10): level-0 (12, 12) max distance 12
    # -> out; level-1 (8, 8) max distance 12 -> in, but GT A (area 144 <
    # 400) also wants point 16 and wins it.
    g = gts([[7., 7., 19., 19.], [4., 4., 36., 36.], [0., 0., 20., 20.]])
    res = assigner.assign(InstanceData(priors=priors), g,
                          num_level_priors=num_level)
    expected = torch.zeros(20, dtype=torch.long)
    expected[5] = 1
    expected[16] = 1
    expected[19] = 2
    assert res.gt_inds.tolist() == expected.tolist()
    with pytest.raises(ValueError):
        assigner.assign(InstanceData(priors=priors), g)


def test_foreground_loss_baseline_against_dense_scipy():
    torch.manual_seed(0)
    priors = two_level_points()
    num, num_classes = len(priors), 3
    scores = torch.rand(num, num_classes) * 0.98 + 0.01
    ctr = priors[:, :2] + torch.randn(num, 2) * 2
    wh = torch.rand(num, 2) * 20 + 4
    bboxes = torch.cat([ctr - wh / 2, ctr + wh / 2], dim=1)
    g = gts([[0., 0., 20., 20.], [10., 2., 30., 26.], [1., 1., 3., 3.]],
            [0, 2, 1])
    assigner = ForegroundLossAssigner(alpha=0.25, gamma=2.0, reg_weight=2.0)
    res = assigner.assign(
        InstanceData(priors=priors, scores=scores, bboxes=bboxes), g)

    # dense cost written independently: focal loss summed over classes
    # against the one-hot target, + 2 * (1 - GIoU), 1e8 outside the box
    onehot = torch.nn.functional.one_hot(g.labels, num_classes).float()
    p = scores[None].expand(3, -1, -1)
    t = onehot[:, None].expand(-1, num, -1)
    pt = p * t + (1 - p) * (1 - t)
    w = 0.25 * t + 0.75 * (1 - t)
    cls = (-w * (1 - pt)**2 * torch.log(pt)).sum(-1)
    b, gb = bboxes[None], g.bboxes[:, None]
    inter = (torch.min(b[..., 2:], gb[..., 2:]) -
             torch.max(b[..., :2], gb[..., :2])).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).prod(-1)
    area_g = (gb[..., 2:] - gb[..., :2]).prod(-1)
    union = area_b + area_g - inter
    hull = (torch.max(b[..., 2:], gb[..., 2:]) -
            torch.min(b[..., :2], gb[..., :2])).prod(-1)
    giou = inter / union - (hull - union) / hull
    cost = cls + 2.0 * (1 - giou)
    x, y = priors[:, 0], priors[:, 1]
    inside = (x > gb[..., 0]) & (y > gb[..., 1]) & (x < gb[..., 2]) & (
        y < gb[..., 3])
    cost[~inside] = 1e8
    rows, cols = linear_sum_assignment(cost.double().numpy())
    gt_inds = res.gt_inds
    assert (gt_inds > 0).sum() == 3
    ours = sum(cost[gt_inds[a] - 1, a].item()
               for a in torch.nonzero(gt_inds > 0).flatten())
    assert ours == pytest.approx(cost[rows, cols].sum().item(), rel=1e-6)


def test_fcos_style_rule():
    priors = two_level_points()
    assigner = FCOSStyleAssigner(
        center_sampling_radius=0.0, regress_ranges=((-1, 10), (10, 1e8)))
    # GT [0, 0, 16, 16]: level-0 points inside: (4,4),(12,4),(4,12),(12,12)
    # all have max distance 12 -> out of level 0; level-1 point (8,8) has
    # max distance 8 -> out of [10, inf]: no positive at all
    res = assigner.assign(InstanceData(priors=priors), gts([[0, 0, 16, 16]]),
                          num_level_priors=[16, 4])
    assert (res.gt_inds > 0).sum() == 0
    # GT [2, 2, 14, 14]: level-0 (4,4)...(12,12) max distance 10 -> level 0
    res = assigner.assign(InstanceData(priors=priors),
                          gts([[2., 2., 14., 14.]]),
                          num_level_priors=[16, 4])
    assert torch.nonzero(res.gt_inds > 0).flatten().tolist() == [0, 1, 4, 5]
    assert math.isclose(res.gt_inds.sum().item(), 4)
