"""LossAwareAssigner: hand-computed cases and agreement with a literal dense
computation of the LLA rule (algorithms.md section 1)."""
import math

import pytest
import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

import mmlla  # noqa: F401
from mmlla.models.task_modules.assigners import loss_aware_assigner as lla

ALPHA, GAMMA, REG, TOPK = 0.25, 2.0, 1.5, 10


def build(**kwargs):
    return TASK_UTILS.build(dict(type='LossAwareAssigner', **kwargs))


def gts(boxes, labels=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if labels is None:
        labels = [0] * len(boxes)
    return InstanceData(bboxes=boxes, labels=torch.tensor(labels).long())


def preds(points, scores, bboxes):
    return InstanceData(
        priors=torch.as_tensor(points, dtype=torch.float32),
        scores=torch.as_tensor(scores, dtype=torch.float32),
        bboxes=torch.as_tensor(bboxes, dtype=torch.float32))


# ---------------------------------------------------------------- reference
def dense_reference(points, scores, bboxes, gt_boxes, gt_labels, num_gts,
                    topk=TOPK):
    """The spec, literally: a (R, A, C) focal cost, a full (R, A) cost
    matrix, top-k per row, column-wise argmin among the chosen."""
    p = scores[None].double()  # (1, A, C)
    onehot = torch.nn.functional.one_hot(
        gt_labels, scores.size(1))[:, None].double()  # (R, 1, C)
    fl_pos = -ALPHA * (1 - p)**GAMMA * torch.log(p)
    fl_neg = -(1 - ALPHA) * p**GAMMA * torch.log(1 - p)
    cls = (onehot * fl_pos + (1 - onehot) * fl_neg).sum(-1)  # (R, A)
    # IoU written out (not mmdet's bbox_overlaps)
    g, b = gt_boxes[:, None].double(), bboxes[None].double()
    iw = (torch.minimum(g[..., 2], b[..., 2]) -
          torch.maximum(g[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(g[..., 3], b[..., 3]) -
          torch.maximum(g[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa
    iou = inter / (area(g) + area(b) - inter)
    reg = -torch.log(iou.clamp(min=torch.finfo(torch.float32).eps))
    x, y = points[:, 0].double(), points[:, 1].double()
    d = torch.stack([x - g[..., 0], y - g[..., 1], g[..., 2] - x,
                     g[..., 3] - y], -1)
    inside = d.min(-1).values > 0.01
    cost = cls + REG * reg + 1000.0 * (~inside)
    k = min(topk, cost.size(1))
    chosen = torch.zeros_like(cost, dtype=torch.bool)
    chosen.scatter_(1, cost.topk(k, dim=1, largest=False).indices, True)
    masked = torch.where(chosen, cost, torch.full_like(cost, math.inf))
    best_row = masked.argmin(0)
    any_chosen = chosen.any(0)
    gt_inds = torch.zeros(cost.size(1), dtype=torch.long)
    gt_inds[any_chosen] = torch.where(best_row[any_chosen] < num_gts,
                                      best_row[any_chosen] + 1,
                                      torch.tensor(-1))
    ious = iou[best_row, torch.arange(cost.size(1))]
    return gt_inds, ious


def random_case(seed, num_gts=6, num_ign=2, num_classes=3, grid=16,
                stride=8.0):
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid),
                            indexing='ij')
    points = torch.stack([xs.flatten(), ys.flatten()], -1).float() * stride \
        + stride / 2
    num = len(points)
    scores = torch.rand(num, num_classes, generator=g) * 0.96 + 0.02
    half = torch.rand(num, 2, generator=g) * 24 + 2
    shift = (torch.rand(num, 2, generator=g) - 0.5) * 8
    bboxes = torch.cat([points + shift - half, points + shift + half], -1)
    size = grid * stride
    rows = num_gts + num_ign
    wh = torch.rand(rows, 2, generator=g) * 40 + 6
    xy = torch.rand(rows, 2, generator=g) * (size - wh)
    boxes = torch.cat([xy, xy + wh], -1)
    labels = torch.randint(0, num_classes, (num_gts, ), generator=g)
    gt = InstanceData(bboxes=boxes[:num_gts], labels=labels)
    ign = InstanceData(bboxes=boxes[num_gts:])
    return InstanceData(priors=points, scores=scores, bboxes=bboxes), gt, ign


# ------------------------------------------------------------ hand-computed
def test_topk_takes_the_cheapest_inside_points():
    # one GT, five points inside it, same scores: the cost ranks by IoU
    gt = gts([[0, 0, 100, 20]])
    points = [[10, 10], [30, 10], [50, 10], [70, 10], [90, 10]]
    spans = [(5, 15), (10, 90), (30, 70), (60, 80), (40, 100)]
    boxes = [[x1, 0, x2, 20] for x1, x2 in spans]
    res = build(topk=2).assign(preds(points, [[0.5]] * 5, boxes), gt)
    assert isinstance(res, AssignResult)
    # IoUs 0.1, 0.8, 0.4, 0.2, 0.6 -> the two best are points 1 and 4
    assert res.gt_inds.tolist() == [0, 1, 0, 0, 1]
    assert res.labels.tolist() == [-1, 0, -1, -1, 0]
    assert res.max_overlaps.tolist() == pytest.approx([0, 0.8, 0, 0, 0.6])
    assert res.num_gts == 1


def test_conflict_goes_to_the_cheapest_gt():
    # both GTs take both points (topk 2 of 2); point 0's box is GT 1's box,
    # point 1's box is GT 0's box: each point goes where its IoU is higher
    gt = gts([[0, 0, 40, 40], [2, 2, 44, 44]])
    points = [[20, 20], [22, 22]]
    boxes = [[2, 2, 44, 44], [0, 0, 40, 40]]
    res = build(topk=2).assign(preds(points, [[0.3]] * 2, boxes), gt)
    assert res.gt_inds.tolist() == [2, 1]
    assert res.max_overlaps.tolist() == pytest.approx([1.0, 1.0])


def test_exact_tie_goes_to_the_lowest_index():
    # duplicated GT boxes: identical costs everywhere
    gt = gts([[0, 0, 40, 40], [0, 0, 40, 40]])
    res = build(topk=1).assign(
        preds([[20, 20], [5, 5]], [[0.3], [0.3]],
              [[0, 0, 40, 40], [0, 0, 10, 10]]), gt)
    assert res.gt_inds.tolist() == [1, 0]


def test_ignore_region_competes_with_class_zero():
    # a GT of class 1 and an ignore region with the same box; the point's
    # probabilities favour class 0, so the ignore region is cheaper
    box = [[0, 0, 40, 40]]
    pred = preds([[20, 20], [30, 30]], [[0.9, 0.1], [0.9, 0.1]],
                 [[0, 0, 40, 40], [10, 10, 40, 40]])
    res = build(topk=1).assign(pred, gts(box, [1]), gts(box))
    # point 0 (IoU 1) is both competitors' best: the ignore region wins; the
    # GT keeps nothing (its only choice went to the cheaper competitor)
    assert res.gt_inds.tolist() == [-1, 0]
    assert res.labels.tolist() == [-1, -1]
    # with class-0 probabilities low instead, the GT (lower index) wins the
    # tie-free comparison
    pred.scores = torch.tensor([[0.1, 0.9], [0.1, 0.9]])
    res = build(topk=1).assign(pred, gts(box, [1]), gts(box))
    assert res.gt_inds.tolist() == [1, 0]
    assert res.labels.tolist() == [1, -1]


def test_inside_margin_is_strict_001px():
    # point 0 lies 0.005 px inside the left side: it counts as outside even
    # though its box is perfect; point 1 is 0.02 px inside: inside
    gt = gts([[0, 0, 10, 10]])
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [4, 4, 6, 6]]
    pred = preds([[0.005, 5], [0.02, 5], [5, 5]], [[0.5]] * 3, boxes)
    res = build(topk=1).assign(pred, gt)
    assert res.gt_inds.tolist() == [0, 1, 0]
    pred.priors[1, 0] = 0.009  # now outside too: the worse inside point wins
    assert build(topk=1).assign(pred, gt).gt_inds.tolist() == [0, 0, 1]


def test_gt_without_inside_points_takes_cheapest_outside_points():
    # the GT contains no point: it still takes its top-k, ranked by the rest
    # of the cost (1000 added to all)
    gt = gts([[100, 100, 110, 110]])
    points = [[0, 0], [50, 50], [200, 200], [300, 300]]
    boxes = [[0, 0, 1, 1], [95, 95, 108, 108], [101, 101, 109, 109],
             [100, 100, 111, 111]]
    res = build(topk=2).assign(preds(points, [[0.5]] * 4, boxes), gt)
    # IoUs 0, 0.42.., 0.64, 0.826..: points 3 and 2
    assert res.gt_inds.tolist() == [0, 0, 1, 1]


def test_more_gts_than_points_times_k():
    # 4 GTs, 3 points, topk 10: every GT takes every point, each point goes
    # to its cheapest GT; one GT ends up with nothing
    gt = gts([[0, 0, 30, 30], [0, 0, 32, 32], [1, 1, 30, 30],
              [60, 60, 90, 90]])
    points = [[10, 10], [15, 15], [75, 75]]
    boxes = [[0, 0, 32, 32], [1, 1, 30, 30], [60, 60, 90, 90]]
    pred = preds(points, [[0.4]] * 3, boxes)
    res = build().assign(pred, gt)
    assert res.gt_inds.tolist() == [2, 3, 4]
    ref, _ = dense_reference(pred.priors, pred.scores, pred.bboxes,
                             gt.bboxes, gt.labels, 4)
    assert torch.equal(res.gt_inds, ref)


def test_empty_gt_and_empty_priors():
    pred = preds([[5, 5], [9, 9]], [[0.2], [0.7]], [[0, 0, 9, 9]] * 2)
    res = build().assign(pred, gts([]))
    assert res.gt_inds.tolist() == [0, 0] and res.labels.tolist() == [-1, -1]
    assert res.num_gts == 0
    res = build().assign(pred, gts([]), gts([]))
    assert res.gt_inds.tolist() == [0, 0]
    empty = InstanceData(priors=torch.zeros(0, 4), scores=torch.zeros(0, 1),
                         bboxes=torch.zeros(0, 4))
    res = build().assign(empty, gts([[0, 0, 10, 10]]))
    assert res.gt_inds.shape == (0, ) and res.num_gts == 1


def test_only_ignore_regions():
    pred, _, ign = random_case(3, num_gts=0, num_ign=3)
    res = build().assign(pred, gts([]), ign)
    assert set(res.gt_inds.unique().tolist()) == {-1, 0}
    assert int((res.gt_inds == -1).sum()) == 3 * TOPK  # no overlap here
    assert (res.labels == -1).all() and (res.max_overlaps == 0).all()


# ------------------------------------------------------- dense agreement
@pytest.mark.parametrize('seed', [0, 1, 2, 3])
@pytest.mark.parametrize('chunk', [None, 700])
# 3 classes < competitors: the (A, C) class-cost table; 40 classes >
# competitors: each competitor's class cost from the identity directly
@pytest.mark.parametrize('num_classes', [3, 40])
def test_matches_dense_reference(seed, chunk, num_classes, monkeypatch):
    if chunk is not None:  # several competitor chunks
        monkeypatch.setattr(lla, 'MAX_PAIRS_PER_CHUNK', chunk)
    pred, gt, ign = random_case(seed, num_gts=8 + seed, num_ign=seed % 3,
                                num_classes=num_classes)
    res = build().assign(pred, gt, ign)
    boxes = torch.cat([gt.bboxes, ign.bboxes])
    labels = torch.cat([gt.labels, gt.labels.new_zeros(len(ign))])
    ref, ious = dense_reference(pred.priors, pred.scores, pred.bboxes, boxes,
                                labels, len(gt))
    assert torch.equal(res.gt_inds, ref)
    pos = ref > 0
    assert pos.sum() > 0
    assert torch.equal(res.labels[pos], gt.labels[ref[pos] - 1])
    assert (res.labels[~pos] == -1).all()
    torch.testing.assert_close(res.max_overlaps[pos], ious[pos].float())
    assert (res.max_overlaps[~pos] == 0).all()
    # every GT keeps at most topk points
    assert torch.bincount(ref[pos]).max() <= TOPK


def test_class_cost_identity_is_exact():
    scores = torch.rand(50, 4, generator=torch.Generator().manual_seed(0))
    table = build().class_cost_table(scores)
    p = scores.double()
    fl_pos = -ALPHA * (1 - p)**GAMMA * p.log()
    fl_neg = -(1 - ALPHA) * p**GAMMA * (1 - p).log()
    for c in range(4):
        onehot = torch.zeros(4, dtype=torch.double)
        onehot[c] = 1
        literal = (onehot * fl_pos + (1 - onehot) * fl_neg).sum(-1)
        torch.testing.assert_close(table[:, c].double(), literal,
                                   rtol=1e-5, atol=1e-6)


# ------------------------------------------------------- priors and misc
def test_anchor_priors_use_centres():
    pred, gt, ign = random_case(5)
    points = pred.priors
    sizes = torch.rand(len(points), 2,
                       generator=torch.Generator().manual_seed(1)) * 30 + 4
    anchors = torch.cat([points - sizes / 2, points + sizes / 2], -1)
    want = build().assign(pred, gt, ign).gt_inds
    for prior_type in ('auto', 'anchor'):
        pred_a = InstanceData(priors=anchors, scores=pred.scores,
                              bboxes=pred.bboxes)
        got = build(prior_type=prior_type).assign(pred_a, gt, ign).gt_inds
        assert torch.equal(got, want), prior_type
    # the same anchors read as points (x1, y1, ...) give another assignment
    forced = build(prior_type='point').assign(
        InstanceData(priors=anchors, scores=pred.scores, bboxes=pred.bboxes),
        gt, ign).gt_inds
    assert not torch.equal(forced, want)


def test_points_with_strides_are_points():
    pred, gt, ign = random_case(6)
    strided = torch.cat([pred.priors, torch.full_like(pred.priors, 8.0)], -1)
    want = build().assign(pred, gt, ign).gt_inds
    for prior_type in ('auto', 'point'):
        got = build(prior_type=prior_type).assign(
            InstanceData(priors=strided, scores=pred.scores,
                         bboxes=pred.bboxes), gt, ign).gt_inds
        assert torch.equal(got, want), prior_type


def test_assignment_takes_no_gradient():
    pred, gt, ign = random_case(7)
    scores = pred.scores.clone().requires_grad_()
    bboxes = pred.bboxes.clone().requires_grad_()
    res = build().assign(
        InstanceData(priors=pred.priors, scores=scores, bboxes=bboxes), gt,
        ign)
    for t in (res.gt_inds, res.max_overlaps, res.labels):
        assert not t.requires_grad and t.grad_fn is None
    assert scores.grad is None and bboxes.grad is None


@pytest.mark.parametrize('field', ['scores', 'bboxes'])
@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_predictions_raise(field, bad):
    pred, gt, _ = random_case(8)
    getattr(pred, field)[3, 1] = bad
    with pytest.raises(ValueError, match='non-finite'):
        build().assign(pred, gt)


def test_missing_predictions_and_atss_style_calls_are_refused():
    pred, gt, _ = random_case(9)
    with pytest.raises(ValueError, match='pred_instances.scores'):
        build().assign(InstanceData(priors=pred.priors), gt)
    with pytest.raises(TypeError, match='num_level_priors'):
        build().assign(pred, [256], gt, None)
    with pytest.raises(ValueError):
        build(prior_type='box')
    # extra keyword arguments that heads pass are accepted
    build().assign(pred, gt, None, num_level_priors=[256])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA')
def test_cuda_matches_cpu():
    pred, gt, ign = random_case(10, num_gts=30, num_ign=3)
    want = build().assign(pred, gt, ign)
    got = build().assign(pred.to('cuda'), gt.to('cuda'), ign.to('cuda'))
    assert got.gt_inds.is_cuda
    assert torch.equal(got.gt_inds.cpu(), want.gt_inds)
    torch.testing.assert_close(got.max_overlaps.cpu(), want.max_overlaps)
