"""Assigner behaviour that mutation testing (docs/mutation_testing.md)
showed no other test pinned down."""
from itertools import permutations

import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

import mmlla  # noqa: F401  (registers the assigners)
from mmlla.models.task_modules.assigners.utils import check_finite


def test_foreground_loss_defaults_are_the_reference_constants():
    """docs/algorithms.md section 5: focal alpha 0.25, gamma 2, GIoU cost
    weight 2.0; the spatial prior defaults to the box itself (radius 0, as
    POTOAssigner's CrowdHuman default); configs set 1.5 for COCO."""
    built = TASK_UTILS.build(dict(type='ForegroundLossAssigner'))
    assert (built.alpha, built.gamma, built.reg_weight) == (0.25, 2.0, 2.0)
    assert built.center_sampling_radius == 0.0


def test_foreground_loss_default_cost_matches_the_written_out_cost():
    """With the defaults the Hungarian match minimises, written out here,
    focal(alpha .25, gamma 2) summed over classes + 2 * (1 - GIoU); three
    GTs and four candidate points chosen so that gamma 3 or a GIoU weight
    of 3 would pick another match."""
    g = torch.Generator().manual_seed(0)
    priors = torch.tensor([[10., 10., 8., 8.], [14., 12., 8., 8.],
                           [18., 14., 8., 8.], [12., 18., 8., 8.]])
    gts = InstanceData(bboxes=torch.tensor([[2., 2., 30., 30.],
                                            [4., 6., 28., 26.],
                                            [6., 4., 26., 28.]]),
                       labels=torch.tensor([0, 1, 0]))

    def cost_of(scores, boxes, gamma, weight):
        alpha = 0.25
        p = scores.double()
        neg = -(1 - alpha) * p**gamma * torch.log(1 - p)
        pos = -alpha * (1 - p)**gamma * torch.log(p)
        out = torch.zeros(3, 4, dtype=torch.float64)
        for i, (box, c) in enumerate(zip(gts.bboxes.tolist(),
                                         gts.labels.tolist())):
            for j, b in enumerate(boxes.tolist()):
                inter = max(0., min(b[2], box[2]) - max(b[0], box[0])) * \
                    max(0., min(b[3], box[3]) - max(b[1], box[1]))
                union = (b[2] - b[0]) * (b[3] - b[1]) + \
                    (box[2] - box[0]) * (box[3] - box[1]) - inter
                hull = (max(b[2], box[2]) - min(b[0], box[0])) * \
                    (max(b[3], box[3]) - min(b[1], box[1]))
                giou = inter / union - (hull - union) / hull
                out[i, j] = neg[j].sum() - neg[j, c] + pos[j, c] + \
                    weight * (1 - giou)
        return out

    def best(cost):
        return min(permutations(range(4), 3),
                   key=lambda cols: sum(cost[i, c] for i, c in
                                        enumerate(cols)))

    for _ in range(200):
        scores = torch.rand(4, 2, generator=g) * 0.9 + 0.05
        centre = priors[:, None, :2]
        half = torch.rand(4, 2, generator=g) * 10 + 6
        boxes = torch.cat([centre[:, 0] - half, centre[:, 0] + half], -1)
        want = best(cost_of(scores, boxes, 2.0, 2.0))
        if want != best(cost_of(scores, boxes, 3.0, 2.0)) and \
                want != best(cost_of(scores, boxes, 2.0, 3.0)):
            break
    else:
        raise AssertionError('no distinguishing case found')
    res = TASK_UTILS.build(dict(type='ForegroundLossAssigner')).assign(
        InstanceData(priors=priors, scores=scores, bboxes=boxes), gts)
    got = tuple(int((res.gt_inds == i + 1).nonzero()[0, 0]) for i in range(3))
    assert got == want


def test_fcos_style_max_overlaps_are_the_ious_of_the_predicted_boxes():
    """As mmdet's assigners: ``max_overlaps`` holds, for each positive, the
    IoU of its predicted box with its GT (0 elsewhere)."""
    a = TASK_UTILS.build(dict(type='FCOSStyleAssigner',
                              center_sampling_radius=1.5,
                              regress_ranges=((-1, 1e8), )))
    priors = torch.tensor([[12., 12., 8., 8.], [20., 12., 8., 8.],
                           [52., 52., 8., 8.]])
    pred = torch.tensor([[4., 4., 24., 20.], [10., 2., 30., 26.],
                         [40., 40., 60., 60.]])
    gt = InstanceData(bboxes=torch.tensor([[2., 2., 30., 24.]]),
                      labels=torch.tensor([0]))
    res = a.assign(InstanceData(priors=priors, bboxes=pred), gt,
                   num_level_priors=[3])
    assert res.gt_inds.tolist() == [1, 1, 0]
    want = []
    for b in pred[:2].tolist():
        g = gt.bboxes[0].tolist()
        inter = (min(b[2], g[2]) - max(b[0], g[0])) * (
            min(b[3], g[3]) - max(b[1], g[1]))
        union = (b[2] - b[0]) * (b[3] - b[1]) + (g[2] - g[0]) * (
            g[3] - g[1]) - inter
        want.append(inter / union)
    torch.testing.assert_close(res.max_overlaps,
                               torch.tensor(want + [0.]))


def test_check_finite_edges():
    """None and empty tensors pass; a single NaN / Inf is refused; a finite
    tensor whose float32 sum overflows is accepted."""
    check_finite('x', None)
    check_finite('x', torch.zeros(0, 4))
    for bad in (float('inf'), float('nan')):
        with pytest.raises(ValueError, match='non-finite'):
            check_finite('x', torch.tensor([bad]))
    big = torch.tensor([3e38, 3e38, 3e38], dtype=torch.float32)
    assert not torch.isfinite(big.sum())
    check_finite('x', big)
