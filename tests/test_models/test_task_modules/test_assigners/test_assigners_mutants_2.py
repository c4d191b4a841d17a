"""Assigner behaviour that the second mutation run over ``mmlla.models``
(docs/mutation_testing.md, with the ``@torch.no_grad()`` bodies of the
``assign`` methods mutated) showed no other test pinned down. Expected
values are written out here (docs/algorithms.md), not computed by the
assigners' helpers."""
import math

import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

from mmlla.models.task_modules.assigners import (FCOSStyleAssigner,
                                                 ForegroundLossAssigner,
                                                 LossAwareAssigner,
                                                 One2OneCenterAssigner,
                                                 PointATSSAssigner,
                                                 POTOAuxAssigner)
from mmlla.models.task_modules.assigners import \
    foreground_loss_assigner as fla
from mmlla.models.task_modules.assigners import loss_aware_assigner as lla
from mmlla.models.task_modules.assigners import sparse_utils
from mmlla.models.task_modules.assigners.loss_aware_assigner import \
    looks_like_anchors
from mmlla.models.task_modules.assigners.poto_assigner import sparse_argmax
from mmlla.models.task_modules.assigners.sparse_utils import (
    GridLevel, best_per_row, grid_levels, grid_pairs, prior_pairs,
    sparse_matching)
from mmlla.models.task_modules.assigners.utils import (
    focal_terms_from_logits, inside_prior, prior_region)
from test_point_atss_assigner import atss_restated


def iou(a, b):
    inter = max(0., min(a[2], b[2]) - max(a[0], b[0])) * \
        max(0., min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) \
        - inter
    return inter / union


def giou(a, b):
    inter = max(0., min(a[2], b[2]) - max(a[0], b[0])) * \
        max(0., min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) \
        - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * \
        (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def line_case():
    """Six points on a row, two levels (5 + 1 points), one GT."""
    priors = torch.tensor([[4., 8., 8., 8.], [12., 8., 8., 8.],
                           [20., 8., 8., 8.], [28., 8., 8., 8.],
                           [36., 8., 8., 8.], [16., 8., 16., 16.]])
    bboxes = torch.tensor([[0., 0., 10., 14.], [6., 2., 18., 14.],
                           [10., 1., 26., 15.], [20., 0., 34., 16.],
                           [30., 2., 40., 14.], [8., 1., 24., 15.]])
    scores = torch.tensor([[0.01, 0.1], [0.01, 0.3], [0.01, 0.2],
                           [0.01, 0.7], [0.01, 0.1], [0.9, 0.2]])
    gt = InstanceData(bboxes=torch.tensor([[6., 0., 26., 16.]]),
                      labels=torch.tensor([0]))
    return InstanceData(priors=priors, bboxes=bboxes, scores=scores), gt


def aux_reference(pred, gt, levels, alpha, topk):
    """docs/algorithms.md section 4 written out for one GT."""
    box, c = gt.bboxes[0].tolist(), int(gt.labels[0])
    q = [float(pred.scores[a, c])**(1 - alpha) *
         iou(pred.bboxes[a].tolist(), box)**alpha
         for a in range(len(pred.priors))]
    cands, start = [], 0
    for num in levels:
        order = sorted(range(start, start + num), key=lambda a: (-q[a], a))
        cands += order[:min(topk, num)]
        start += num
    vals = [q[a] for a in cands]
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean)**2 for v in vals) / (len(vals) - 1))
    inds, overlaps = [], []
    for a, (x, y) in enumerate(pred.priors[:, :2].tolist()):
        pos = a in cands and q[a] >= mean + std and \
            x > box[0] and y > box[1] and x < box[2] and y < box[3]
        inds.append(1 if pos else 0)
        overlaps.append(iou(pred.bboxes[a].tolist(), box) if pos else 0.)
    return inds, overlaps


def test_poto_aux_levels_default_and_one_point_level():
    """The candidates are taken per level, a one-point level included
    (k = min(topk, 1) = 1); without ``num_level_priors`` all points are one
    level; ``max_overlaps`` is the IoU of a positive's predicted box."""
    pred, gt = line_case()
    aux = POTOAuxAssigner(alpha=0.8, topk=2)
    for levels in ([5, 1], [6]):
        inds, overlaps = aux_reference(pred, gt, levels, 0.8, 2)
        kwargs = {} if levels == [6] else dict(num_level_priors=levels)
        res = aux.assign(pred, gt, **kwargs)
        assert res.gt_inds.tolist() == inds
        assert res.labels.tolist() == [0 if i else -1 for i in inds]
        torch.testing.assert_close(res.max_overlaps.double(),
                                   torch.tensor(overlaps).double(),
                                   rtol=1e-5, atol=1e-6)
    # the cases are not trivial: the one-point level's point is positive
    assert aux_reference(pred, gt, [5, 1], 0.8, 2)[0] == [0] * 5 + [1]


def test_foreground_loss_max_overlaps_are_the_ious_of_the_matched_boxes():
    pred, gt = line_case()
    res = ForegroundLossAssigner().assign(pred, gt)
    pos = (res.gt_inds > 0).nonzero().flatten().tolist()
    assert len(pos) == 1
    want = torch.zeros(6, dtype=torch.float64)
    want[pos[0]] = iou(pred.bboxes[pos[0]].tolist(), gt.bboxes[0].tolist())
    torch.testing.assert_close(res.max_overlaps.double(), want, rtol=1e-5,
                               atol=1e-6)


def test_foreground_loss_takes_the_sparse_path_by_default(monkeypatch):
    """``sparse=True`` is the default: above the size threshold (here 0)
    the in-prior pairs go to the sparse matching; ``sparse=False`` keeps
    the dense reference. Both give the same assignment."""
    monkeypatch.setattr(sparse_utils, 'SPARSE_MIN_PAIRS', 0)
    monkeypatch.setattr(sparse_utils, 'SPARSE_MIN_PAIRS_CUDA', 0)
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return sparse_utils.sparse_matching(*args, **kwargs)

    monkeypatch.setattr(fla, 'sparse_matching', spy)
    pred, gt = line_case()
    fast = ForegroundLossAssigner().assign(pred, gt)
    assert calls == [1]
    ref = ForegroundLossAssigner(sparse=False).assign(pred, gt)
    assert calls == [1]
    assert torch.equal(fast.gt_inds, ref.gt_inds)


def focal_written_out(x, alpha=0.25, gamma=2.0):
    """(FLpos, FLneg) of logits x, float64, logs from the logits."""
    p = 1 / (1 + math.exp(-x))
    log_p = -math.log1p(math.exp(-x)) if x > 0 else x - math.log1p(
        math.exp(x))
    log_q = log_p - x
    return (-alpha * (1 - p)**gamma * log_p,
            -(1 - alpha) * p**gamma * log_q)


def test_foreground_loss_logit_scores_take_their_logs_from_the_logits():
    """``score_type='logits'``: the focal logs are ``logsigmoid(+-x)``,
    exact where the sigmoid saturates (x = 30: 1 - p is 0 in float32)."""
    xs = [30., -30., 0.5, 18.]
    pred = InstanceData(scores=torch.tensor([xs]))
    pos, neg = ForegroundLossAssigner(score_type='logits').point_terms(
        pred, torch.tensor([0]))
    want = [focal_written_out(x) for x in xs]
    torch.testing.assert_close(pos[0].double(),
                               torch.tensor([w[0] for w in want]).double(),
                               rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(neg[0].double(),
                               torch.tensor([w[1] for w in want]).double(),
                               rtol=1e-5, atol=1e-12)


def test_focal_terms_of_logits_keep_1_minus_p_exact():
    """FLpos = -alpha (1 - p)^gamma log p with ``1 - p = sigmoid(-x)``:
    relative precision where float32 ``1 - p`` would round (x = 12, 18)."""
    xs = [12., 18., 0.5, -5., -10.]
    pos, neg = focal_terms_from_logits(torch.tensor(xs), 0.25, 2.0)
    want = [focal_written_out(x) for x in xs]
    torch.testing.assert_close(pos.double(),
                               torch.tensor([w[0] for w in want]).double(),
                               rtol=1e-4, atol=0.)
    torch.testing.assert_close(neg.double(),
                               torch.tensor([w[1] for w in want]).double(),
                               rtol=1e-4, atol=0.)


def test_foreground_loss_pair_costs_written_out():
    """Each in-prior pair's cost: the focal loss summed over the classes
    against the GT's one-hot target + reg_weight * (1 - GIoU)."""
    pred, gt = line_case()
    assigner = ForegroundLossAssigner(reg_weight=2.0)
    rows, points = torch.tensor([0, 0, 0]), torch.tensor([1, 2, 5])
    got = assigner.pair_costs(pred, gt.bboxes, gt.labels, rows, points)
    alpha, gamma = 0.25, 2.0
    want = []
    for a in points.tolist():
        p = pred.scores[a].double()
        neg = -(1 - alpha) * p**gamma * torch.log(1 - p)
        pos = -alpha * (1 - p)**gamma * torch.log(p)
        cls = float(neg.sum() - neg[0] + pos[0])
        want.append(cls + 2.0 * (1 - giou(pred.bboxes[a].tolist(),
                                          gt.bboxes[0].tolist())))
    torch.testing.assert_close(got.double(), torch.tensor(want).double(),
                               rtol=1e-5, atol=1e-6)


def test_sparse_argmax_ties_go_to_the_lowest_gt():
    """40 GTs whose best point is the same one, at equal quality: the
    lowest GT wins (an unstable sort reorders 17 or more ties)."""
    num = 40
    rows = torch.arange(num).repeat_interleave(2)
    points = torch.tensor([3, 7] * num)
    quality = torch.tensor([0.5, 0.25] * num)
    gt_idx, prior_idx = sparse_argmax(rows, points, quality, num)
    assert gt_idx.tolist() == [0]
    assert prior_idx.tolist() == [3]


# ---------------------------------------------------------------- LLA keys
def test_grid_key_per_prior_type():
    """The level key of the sparse path: strides of points, sizes of
    anchors; none for (A, 2) points."""
    # points with strides whose stride exceeds the coordinates: they look
    # like anchors, but prior_type='point' says they are points
    points = torch.tensor([[2., 3., 8., 8.], [6., 3., 8., 8.],
                           [4., 5., 16., 16.]])
    anchors = torch.tensor([[0., 0., 8., 6.], [4., 2., 12., 8.],
                            [-8., -4., 24., 28.]])
    sizes = [[8., 6.], [8., 6.], [32., 32.]]
    key = LossAwareAssigner(prior_type='point').grid_key
    assert key(points).tolist() == [[8., 8.], [8., 8.], [16., 16.]]
    assert key(HorizontalBoxes(anchors)).tolist() == sizes
    assert key(points[:2]).tolist() == [[8., 8.], [8., 8.]]
    assert LossAwareAssigner(prior_type='point').grid_key(
        points[:, :2]) is None
    assert LossAwareAssigner(prior_type='point').grid_key(
        points[:2, :2]) is None
    assert LossAwareAssigner(prior_type='anchor').grid_key(
        anchors).tolist() == sizes
    auto = LossAwareAssigner(prior_type='auto').grid_key
    assert auto(anchors).tolist() == sizes
    far = torch.tensor([[100., 60., 8., 8.], [108., 60., 8., 8.]])
    assert auto(far).tolist() == [[8., 8.], [8., 8.]]


def test_looks_like_anchors_needs_both_sides_positive():
    yes = torch.tensor([[0., 0., 8., 6.]])
    assert bool(looks_like_anchors(yes))
    for bad in ([[0., 0., 8., 0.]], [[0., 0., 0., 6.]], [[0., 6., 8., 2.]],
                [[8., 0., 4., 6.]], [[8., 8., 8., 8.]]):
        assert not bool(looks_like_anchors(torch.tensor(bad))), bad


def test_lla_sparse_path_with_more_classes_than_rows(monkeypatch):
    """Fewer rows than classes (COCO-like): the sparse path's in-box costs
    hold the IoU term too (-reg_cost log IoU + the class cost), so it
    equals the dense path."""
    monkeypatch.setattr(lla, 'SPARSE_MIN_PAIRS', 0)
    monkeypatch.setattr(lla, 'SPARSE_MIN_PAIRS_CUDA', 0)
    g = torch.Generator().manual_seed(0)
    pts = []
    for s, n in ((8, 8), (16, 4)):
        for r in range(n):
            for c in range(n):
                pts.append([c * s + s / 2, r * s + s / 2, s, s])
    priors = torch.tensor(pts)
    num = len(priors)
    d = torch.rand(num, 4, generator=g) * 20 + 1
    bboxes = torch.cat([priors[:, :2] - d[:, :2], priors[:, :2] + d[:, 2:]],
                       dim=1)
    pred = InstanceData(priors=priors, bboxes=bboxes,
                        scores=torch.rand(num, 3, generator=g) * 0.9 + 0.05)
    gt = InstanceData(bboxes=torch.tensor([[4., 6., 40., 50.],
                                           [20., 10., 60., 60.]]),
                      labels=torch.tensor([2, 0]))
    for topk in (3, 9):
        fast = LossAwareAssigner(topk=topk).assign(pred, gt)
        ref = LossAwareAssigner(topk=topk, sparse=False).assign(pred, gt)
        assert torch.equal(fast.gt_inds, ref.gt_inds)
        assert torch.equal(fast.labels, ref.labels)


def test_lla_sparse_in_box_cost_just_above_the_outside_penalty(monkeypatch):
    """A row whose best in-box cost (1000.5 + c) is dearer than an outside
    point's (1000 + c, its predicted box is the GT): the sparse path may
    trust in-box points only below 1000 - 1 (COST_SAFETY), so it ranks
    the whole row and takes the outside point, as the dense path does."""
    monkeypatch.setattr(lla, 'SPARSE_MIN_PAIRS', 0)
    monkeypatch.setattr(lla, 'SPARSE_MIN_PAIRS_CUDA', 0)
    priors = torch.tensor([[x, y, 8., 8.] for y in (4., 12., 20., 28.)
                           for x in (4., 12., 20., 28.)])
    bboxes = torch.tensor([[100., 100., 101., 101.]]).repeat(16, 1)
    h = 16 * math.exp(-1.0005)   # IoU e^-1.0005: reg cost 1000.5
    for a in (0, 1, 4, 5):   # the in-box points
        bboxes[a] = torch.tensor([0., 0., 16., h])
    bboxes[2] = torch.tensor([0., 0., 16., 16.])   # outside, IoU 1
    pred = InstanceData(priors=priors, bboxes=bboxes,
                        scores=torch.full((16, 1), 0.5))
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 16., 16.]]),
                      labels=torch.tensor([0]))
    for sparse in (True, False):
        res = LossAwareAssigner(topk=1, reg_cost=1000.0,
                                sparse=sparse).assign(pred, gt)
        assert res.gt_inds.tolist() == [0, 0, 1] + [0] * 13


def test_center_baseline_one_point_and_empty_levels():
    """One2OneCenterAssigner per level: a one-point level (P7 of a small
    image) takes part, an empty level is skipped, ``num_level_priors``
    must have one entry per range, and ``max_overlaps`` is the IoU of a
    positive's predicted box with its GT."""
    priors = torch.tensor([[(i + .5) * s, (j + .5) * s, s, s]
                           for n, s in ((4, 8), (2, 16), (1, 32))
                           for j in range(n) for i in range(n)])
    bboxes = torch.cat([priors[:, :2] - 6, priors[:, :2] + 6], dim=1)
    gt = InstanceData(bboxes=torch.tensor([[2., 2., 30., 30.],
                                           [10., 10., 14., 14.]]),
                      labels=torch.tensor([1, 0]))
    pred = InstanceData(priors=priors, bboxes=bboxes)
    ranges = ((-1, 6), (6, 12), (12, 1e8))
    # GT 0, centre (16, 16): only the one-point level's (16, 16) fits
    # (max side 14 in [12, inf)); GT 1, centre (12, 12): level 0's
    # (12, 12) (max side 2) and level 1's (8, 8) (max side 6, inclusive)
    want = [0] * 21
    want[5], want[16], want[20] = 2, 2, 1
    res = One2OneCenterAssigner(ranges).assign(
        pred, gt, num_level_priors=[16, 4, 1])
    assert res.gt_inds.tolist() == want
    assert res.labels.tolist() == [{1: 1, 2: 0}.get(i, -1) for i in want]
    overlaps = torch.zeros(21, dtype=torch.float64)
    for a in (5, 16, 20):
        overlaps[a] = iou(bboxes[a].tolist(),
                          gt.bboxes[want[a] - 1].tolist())
    torch.testing.assert_close(res.max_overlaps.double(), overlaps,
                               rtol=1e-5, atol=1e-6)
    empty_level = One2OneCenterAssigner(
        ((-1, 6), (0, 1), (6, 12), (12, 1e8))).assign(
            pred, gt, num_level_priors=[16, 0, 4, 1])
    assert empty_level.gt_inds.tolist() == want
    with pytest.raises(ValueError, match='3 levels'):
        One2OneCenterAssigner(ranges).assign(pred, gt,
                                             num_level_priors=[16, 5])
    # FCOSStyleAssigner: one regress range per level as well
    with pytest.raises(ValueError, match='3 levels'):
        FCOSStyleAssigner(regress_ranges=ranges).assign(
            pred, gt, num_level_priors=[16, 5])


# ------------------------------------------------------------ sparse_utils
def small_grid():
    pts = []
    for s, n in ((8, 4), (16, 2)):
        for r in range(n):
            for c in range(n):
                pts.append([c * s + s / 2, r * s + s / 2, s, s])
    return torch.tensor(pts)


def test_prior_pairs_of_small_problems_are_the_dense_mask():
    """Small problems (and (A, 2) points, non-finite boxes) list the
    pairs from the dense mask, with the given radius and margin."""
    priors = small_grid()
    gts = torch.tensor([[1., 2., 20., 30.], [10., 0., 32., 14.]])
    for radius, margin in ((0., 0.), (1.5, 0.), (0.5, 1.0), (0., 3.0)):
        rows, points = prior_pairs(priors, gts, radius, margin)
        want = inside_prior(priors, gts, radius, margin).nonzero(
            as_tuple=True)
        assert rows.tolist() == want[0].tolist()
        assert points.tolist() == want[1].tolist()
    # the centre regions: 1.5 strides around (10.5, 16), clipped to the box
    rows, points = prior_pairs(priors, gts[:1], 1.5)
    assert points.tolist() == [4, 5, 8, 9, 16, 18]
    # (A, 2) points of one grid level: no strides, the dense mask
    rows, points = prior_pairs(priors[:16, :2], gts)
    want = inside_prior(priors[:16], gts).nonzero(as_tuple=True)
    assert points.tolist() == want[1].tolist()
    assert rows.tolist() == want[0].tolist()
    # non-finite boxes: the dense mask (a NaN box holds no point)
    for bad in (float('inf'), float('nan')):
        boxes = torch.tensor([[1., 2., bad, 30.], [10., 0., 32., 14.],
                              [bad, bad, bad, bad]])
        rows, points = prior_pairs(priors, boxes)
        want = inside_prior(priors, boxes).nonzero(as_tuple=True)
        assert rows.tolist() == want[0].tolist()
        assert points.tolist() == want[1].tolist()
    assert points.tolist() == [1, 2, 3, 5, 6, 7, 17]


def test_best_per_row_keeps_rows_at_or_below_k_once():
    """k = 1: a row of two pairs keeps its best, a row of one pair keeps
    it, each position once."""
    rows = torch.tensor([0, 0, 1, 3, 3, 3])
    values = torch.tensor([0.2, 0.9, 0.5, 0.1, 0.7, 0.7])
    assert best_per_row(rows, values, 4, 1, True).tolist() == [1, 2, 4]
    assert best_per_row(rows, values, 4, 1, False).tolist() == [0, 2, 3]
    assert best_per_row(rows, values, 4, 3, True) is None


def test_sparse_matching_edges():
    """No pair, pairs no better than outside, one pair, and a case where
    fewer matches of higher total gain win over more matches."""
    empty = torch.zeros(0, dtype=torch.long)
    r, p = sparse_matching(empty, empty, torch.zeros(0), 2, 0.0, True)
    assert r.tolist() == [] and p.tolist() == []
    # one useful pair
    r, p = sparse_matching(torch.tensor([1]), torch.tensor([4]),
                           torch.tensor([0.5]), 2, 0.0, True)
    assert (r.tolist(), p.tolist()) == ([1], [4])
    # a pair no better than outside is left out, the others kept
    r, p = sparse_matching(torch.tensor([0, 1, 1]), torch.tensor([2, 0, 3]),
                           torch.tensor([5.0, 3.0, 4.0]), 2, 4.0, False)
    assert (r.tolist(), p.tolist()) == ([1], [0])
    r, p = sparse_matching(torch.tensor([0, 1]), torch.tensor([2, 3]),
                           torch.tensor([4.0, 1.0]), 2, 4.0, False)
    assert (r.tolist(), p.tolist()) == ([1], [3])
    # gains: row 0 -> p0 10, row 0 -> p1 4, row 1 -> p0 5.5: the optimum is
    # row 0 -> p0 alone (10 > 9.5), row 1 unmatched
    r, p = sparse_matching(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0]),
                           torch.tensor([10.0, 4.0, 5.5]), 2, 0.0, True)
    assert (r.tolist(), p.tolist()) == ([0], [0])


def test_point_atss_one_point_level_and_level_sizes():
    """PointATSSAssigner: a one-point level gives its one candidate; the
    level sizes must sum to the number of priors."""
    priors = [[(i + .5) * s, (j + .5) * s, s, s]
              for n, s in ((4, 8), (2, 16), (1, 32))
              for j in range(n) for i in range(n)]
    boxes = [[0., 0., 32., 32.], [2., 2., 30., 26.], [4., 6., 20., 30.]]
    levels = [16, 4, 1]
    want, _ = atss_restated(torch.tensor(priors).numpy(), boxes, levels,
                            topk=3)
    pred = InstanceData(priors=torch.tensor(priors, dtype=torch.float64))
    gt = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float64),
                      labels=torch.tensor([0, 1, 0]))
    res = PointATSSAssigner(topk=3).assign(pred, gt, num_level_priors=levels)
    assert res.gt_inds.tolist() == want.tolist()
    assert (res.gt_inds > 0).any()
    with pytest.raises(ValueError, match='sums to'):
        PointATSSAssigner().assign(pred, gt, num_level_priors=[16, 4])


# ----------------------------------------------------- grid layout / pairs
def test_grid_levels_edges():
    xy = torch.tensor([[(i + .5) * 8, (j + .5) * 8] for j in range(3)
                       for i in range(3)])
    key = torch.full((9, 2), 8.)
    assert grid_levels(xy[:0], key[:0]) is None
    assert grid_levels(xy, key[:8]) is None
    # one point is a 1 x 1 grid
    assert grid_levels(xy[:1], key[:1]) == [
        GridLevel(0, 1, 1, 4.0, 4.0, 1.0, 1.0, 8.0)]
    # at most 16 runs of equal keys
    runs = torch.arange(1., 18.)[:, None].repeat(1, 2)
    assert len(grid_levels(xy.repeat(2, 1)[:16], runs[:16])) == 16
    assert grid_levels(xy.repeat(2, 1)[:17], runs) is None
    # non-positive steps are no grid: columns or rows in descending order,
    # two points at the same place
    assert grid_levels(xy[[1, 0]], key[:2]) is None
    assert grid_levels(xy[[3, 4, 0, 1]], key[:4]) is None
    assert grid_levels(xy[[0, 0]], key[:2]) is None
    # a point may sit up to 0.25 cells (2 px at stride 8) off its place
    jittered = xy.clone()
    jittered[4] += torch.tensor([2., -2.])
    assert grid_levels(jittered, key) == [
        GridLevel(0, 3, 3, 4.0, 4.0, 8.0, 8.0, 8.0)]
    jittered[4] += torch.tensor([0.5, 0.])
    assert grid_levels(jittered, key) is None


def grid_pairs_of(xy, strides, boxes, margin=0.0):
    levels = grid_levels(xy, strides)
    return grid_pairs(xy, levels,
                      lambda lvl: prior_region(boxes, lvl.stride, 0.0),
                      margin)


def test_grid_pairs_no_cell_and_a_single_cell():
    xy = torch.tensor([[(i + .5) * 8, (j + .5) * 8] for j in range(3)
                       for i in range(3)])
    strides = torch.full((9, 2), 8.)
    rows, points = grid_pairs_of(xy, strides,
                                 torch.tensor([[200., 200., 260., 240.]]))
    for t in (rows, points):
        assert t.dtype == torch.long and t.shape == (0, )
    # a one-point grid and one box: exactly one candidate cell
    rows, points = grid_pairs_of(xy[:1], strides[:1],
                                 torch.tensor([[0., 0., 8., 8.]]))
    assert (rows.tolist(), points.tolist()) == ([0], [0])
    rows, points = grid_pairs_of(xy[:1], strides[:1],
                                 torch.tensor([[0., 0., 8., 8.],
                                               [5., 0., 9., 9.]]))
    assert (rows.tolist(), points.tolist()) == ([0], [0])


def test_grid_pairs_on_a_jittered_grid_equal_the_dense_mask():
    """Points up to 0.24 cells off their grid places: the widened cell
    ranges still hold every point inside a box."""
    g = torch.Generator().manual_seed(1)
    pts = []
    for s, n in ((8, 6), (16, 3)):
        for r in range(n):
            for c in range(n):
                pts.append([c * s, r * s, s, s])
    priors = torch.tensor(pts, dtype=torch.float32)
    jitter = (torch.rand(len(pts), 2, generator=g) * 2 - 1) * 0.24
    # the first row's y (the grid width) and the steps stay exact
    jitter[list(range(6)) + [36, 37, 38], 1] = 0
    priors[:, :2] += jitter * priors[:, 2:]
    exact = [0, 1, 6, 36, 37, 39]
    priors[exact] = torch.tensor(pts, dtype=torch.float32)[exact]
    c = torch.rand(60, 2, generator=g) * 56 - 8
    half = torch.rand(60, 2, generator=g) * 12 + 0.5
    boxes = torch.cat([c - half, c + half], dim=1)
    # a box ending left of the grid origin (x = 0) that still holds a
    # column-0 point jittered to x < 0
    a = min((12, 18, 24, 30), key=lambda i: float(priors[i, 0]))
    x, y = priors[a, :2].tolist()
    assert x < -0.5
    boxes = torch.cat([boxes, torch.tensor([[x - 3, y - 3, x / 2, y + 3]])])
    assert len(grid_levels(priors[:, :2], priors[:, 2:])) == 2
    rows, points = grid_pairs_of(priors[:, :2], priors[:, 2:], boxes)
    want = inside_prior(priors, boxes).nonzero(as_tuple=True)
    assert rows.tolist() == want[0].tolist()
    assert points.tolist() == want[1].tolist()
