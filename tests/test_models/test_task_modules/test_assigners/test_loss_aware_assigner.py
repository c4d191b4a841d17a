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
def dense_cost(points, scores, bboxes, gt_boxes, gt_labels):
    """The spec's cost, literally, in float64: a (R, A, C) focal loss summed
    over classes, the written-out IoU and the in-box test. Returns the
    (R, A) cost and the (R, A) IoU."""
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
    return cls + REG * reg + 1000.0 * (~inside), iou


def dense_choices(cost, topk):
    """(R, A) bool: the points in each row's top-k."""
    k = min(topk, cost.size(1))
    chosen = torch.zeros_like(cost, dtype=torch.bool)
    chosen.scatter_(1, cost.topk(k, dim=1, largest=False).indices, True)
    return chosen


def dense_reference(points, scores, bboxes, gt_boxes, gt_labels, num_gts,
                    topk=TOPK):
    """The spec, literally: the full (R, A) cost matrix, top-k per row; a
    point chosen by one row goes to that row, a point chosen by >= 2 rows
    to the argmin of its whole cost column (over all R rows, chosen or
    not; first index on ties). Returns gt_inds (A,) and the (A,) float64
    IoU of every point's box with its row (meaningful where chosen)."""
    cost, iou = dense_cost(points, scores, bboxes, gt_boxes, gt_labels)
    chosen = dense_choices(cost, topk)
    num_claims = chosen.sum(0)
    claimant = chosen.int().argmax(0)  # the only row where num_claims == 1
    row = torch.where(num_claims >= 2, cost.argmin(0), claimant)
    gt_inds = torch.where(row < num_gts, row + 1, torch.tensor(-1))
    gt_inds = torch.where(num_claims > 0, gt_inds, torch.tensor(0))
    return gt_inds, iou[row, torch.arange(cost.size(1))]


def old_rule_disagreements(points, scores, bboxes, gt_boxes, gt_labels,
                           topk):
    """Contested points where the cheapest *claimant* (the superseded rule)
    is not the cheapest row of the whole column (the spec's rule)."""
    cost, _ = dense_cost(points, scores, bboxes, gt_boxes, gt_labels)
    chosen = dense_choices(cost, topk)
    contested = chosen.sum(0) >= 2
    cheapest_claimant = torch.where(chosen, cost, math.inf).argmin(0)
    return contested & (cheapest_claimant != cost.argmin(0))


def random_case(seed, num_gts=6, num_ign=2, num_classes=3, grid=16,
                stride=8.0, gt_size=(6, 46)):
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
    wh = torch.rand(rows, 2, generator=g) * (gt_size[1] - gt_size[0]) \
        + gt_size[0]
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


# Rows 0 and 1 (boxes G0, G1) contain P only; row 2 (G2, taller) contains P
# and Q. Equal scores everywhere: the class cost is one constant, the cost
# ranks by IoU (and the 1000 outside penalty). Predicted boxes: Q's is G2
# (IoU 1 with row 2), P's overlaps G2 most (IoU 0.875), then G0 (0.519),
# then G1 (0.494). With topk 1, rows 0 and 1 take P, row 2 takes Q.
CONTEST_BOXES = [[0, 0, 40, 40], [6, 0, 44, 40], [0, 0, 44, 80]]
CONTEST_POINTS = [[22, 20], [22, 60]]  # P, Q
CONTEST_PREDS = [[0, 0, 44, 70], [0, 0, 44, 80]]


def contest_pred():
    return preds(CONTEST_POINTS, [[0.5]] * 2, CONTEST_PREDS)


def test_contested_point_goes_to_cheapest_row_even_if_it_did_not_take_it():
    # P is contested by rows 0 and 1; row 2 did not take it (Q is cheaper
    # for row 2) but has the lowest cost at P of all rows: P goes to row 2.
    # (The superseded rule, cheapest claimant, gave P to row 0.)
    pred = contest_pred()
    res = build(topk=1).assign(pred, gts(CONTEST_BOXES))
    assert res.gt_inds.tolist() == [3, 3]
    assert res.labels.tolist() == [0, 0]
    # the IoU with the winning row, which never had P among its candidates
    assert res.max_overlaps.tolist() == pytest.approx([0.875, 1.0])
    boxes = torch.tensor(CONTEST_BOXES, dtype=torch.float32)
    ref, _ = dense_reference(pred.priors, pred.scores, pred.bboxes, boxes,
                             torch.zeros(3, dtype=torch.long), 3, topk=1)
    assert ref.tolist() == [3, 3]
    assert old_rule_disagreements(pred.priors, pred.scores, pred.bboxes,
                                  boxes, torch.zeros(3, dtype=torch.long),
                                  1).tolist() == [True, False]


def test_contested_point_goes_to_a_non_claimant_ignore_region():
    # the same geometry, row 2 an ignore region: P goes to it (-1), not to
    # GT 0 (its cheapest claimant); Q, taken by the ignore region only, too
    res = build(topk=1).assign(contest_pred(), gts(CONTEST_BOXES[:2]),
                               gts(CONTEST_BOXES[2:]))
    assert res.gt_inds.tolist() == [-1, -1]
    assert res.labels.tolist() == [-1, -1]
    assert res.max_overlaps.tolist() == [0, 0]
    assert res.num_gts == 2


def test_point_taken_once_stays_with_its_row():
    # without row 1, P is taken by row 0 only: it stays with row 0 although
    # row 2 (which took Q) is cheaper at P; only contested points look at
    # the whole column
    boxes = [CONTEST_BOXES[0], CONTEST_BOXES[2]]
    res = build(topk=1).assign(contest_pred(), gts(boxes))
    assert res.gt_inds.tolist() == [1, 2]
    assert res.max_overlaps.tolist() == pytest.approx(
        [1600 / 3080, 1.0])
    # likewise with row 2 an ignore region
    res = build(topk=1).assign(contest_pred(), gts(boxes[:1]),
                               gts(boxes[1:]))
    assert res.gt_inds.tolist() == [1, -1]


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
    torch.testing.assert_close(res.max_overlaps[pos].double(), ious[pos],
                               rtol=1e-5, atol=1e-7)
    assert (res.max_overlaps[~pos] == 0).all()


def crowded_case(seed, num_clusters=4, per_cluster=6, num_ign=6, grid=12,
                 stride=8.0):
    """Crowds: every GT and ignore region is a jittered copy (+-6 px) of one
    of ``num_clusters`` boxes, and every point predicts a jittered copy
    (+-4 px) of a random row's box, so that with a small topk many points
    are taken by several rows. Rows: ``num_clusters * per_cluster`` GTs of
    2 classes, then ``num_ign`` ignore regions."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid),
                            indexing='ij')
    points = torch.stack([xs.flatten(), ys.flatten()], -1).float() * stride \
        + stride / 2
    size = grid * stride
    wh = torch.rand(num_clusters, 2, generator=g) * 30 + 20
    xy = torch.rand(num_clusters, 2, generator=g) * (size - wh)
    centres = torch.cat([xy, xy + wh], -1)
    num_gts = num_clusters * per_cluster
    rows = num_gts + num_ign
    boxes = centres[torch.arange(rows) % num_clusters] + \
        (torch.rand(rows, 4, generator=g) - 0.5) * 12
    source = torch.randint(0, rows, (len(points), ), generator=g)
    bboxes = boxes[source] + (torch.rand(len(points), 4, generator=g) -
                              0.5) * 8
    scores = torch.rand(len(points), 2, generator=g) * 0.9 + 0.05
    labels = torch.randint(0, 2, (num_gts, ), generator=g)
    pred = InstanceData(priors=points, scores=scores, bboxes=bboxes)
    gt = InstanceData(bboxes=boxes[:num_gts], labels=labels)
    ign = InstanceData(bboxes=boxes[num_gts:])
    all_labels = torch.cat([labels, labels.new_zeros(num_ign)])
    return pred, gt, ign, boxes, all_labels


@pytest.mark.parametrize('topk', [2, 3, 4])
def test_crowded_contests_follow_the_column_minimum(topk):
    differ_total = to_ignore_total = 0
    for seed in range(5):
        pred, gt, ign, boxes, labels = crowded_case(seed)
        res = build(topk=topk).assign(pred, gt, ign)
        ref, ious = dense_reference(pred.priors, pred.scores, pred.bboxes,
                                    boxes, labels, len(gt), topk=topk)
        assert torch.equal(res.gt_inds, ref), seed
        pos = ref > 0
        assert torch.equal(res.labels[pos], gt.labels[ref[pos] - 1])
        assert (res.labels[~pos] == -1).all()
        torch.testing.assert_close(res.max_overlaps[pos].double(),
                                   ious[pos], rtol=1e-5, atol=1e-7)
        assert (res.max_overlaps[~pos] == 0).all()
        # contested points whose cheapest claimant is not the cheapest row
        # of the whole column: where the superseded rule would differ
        differ = old_rule_disagreements(pred.priors, pred.scores,
                                        pred.bboxes, boxes, labels, topk)
        differ_total += int(differ.sum())
        to_ignore_total += int((differ & (ref == -1)).sum())
    # the cases really separate the two rules (some contested points even
    # go to an ignore region that did not take them)
    assert differ_total > 0
    assert to_ignore_total > 0


@pytest.mark.parametrize('rows_per_chunk', [1, 5, 7])
def test_chunked_rows_give_identical_results(rows_per_chunk, monkeypatch):
    pred, gt, ign, _, _ = crowded_case(4)
    want = build(topk=3).assign(pred, gt, ign)
    # rows split over several chunks (30 rows, 144 points)
    monkeypatch.setattr(lla, 'MAX_PAIRS_PER_CHUNK',
                        rows_per_chunk * len(pred.priors))
    got = build(topk=3).assign(pred, gt, ign)
    assert torch.equal(got.gt_inds, want.gt_inds)
    assert torch.equal(got.labels, want.labels)
    assert torch.equal(got.max_overlaps, want.max_overlaps)


@pytest.mark.parametrize('chunk_rows', [None, 1, 3])
@pytest.mark.parametrize('last_is_ignore', [False, True])
def test_exact_tie_across_chunks_goes_to_the_lower_row(chunk_rows,
                                                       last_is_ignore,
                                                       monkeypatch):
    # rows 2 and 5 have the same box (and class 0): identical costs, so they
    # take the same points and tie for the column minimum there (every other
    # row is outside, +1000); rows 3 and 4 likewise tie with each other.
    # With 3 rows per chunk, rows 2 and 5 (and 3) sit in different chunks.
    pred, _, _ = random_case(11, num_gts=0, num_ign=0, num_classes=1)
    shared, twin = [8, 8, 40, 40], [80, 80, 120, 120]
    far = [[80, 8, 120, 40], [8, 80, 40, 120]]
    boxes = far + [shared, twin, twin, shared]
    if chunk_rows is not None:
        monkeypatch.setattr(lla, 'MAX_PAIRS_PER_CHUNK',
                            chunk_rows * len(pred.priors))
    if last_is_ignore:  # row 5 an ignore region: the GT (row 2) still wins
        res = build(topk=4).assign(pred, gts(boxes[:5]), gts(boxes[5:]))
    else:
        res = build(topk=4).assign(pred, gts(boxes))
    got = res.gt_inds
    assert int((got == 3).sum()) == 4  # row 2 keeps all its points
    assert int((got == 4).sum()) == 4  # row 3 keeps all its points
    assert not ((got == 5) | (got == 6) | (got == -1)).any()
    assert set(got.unique().tolist()) == {0, 1, 2, 3, 4}
    ref, _ = dense_reference(pred.priors, pred.scores, pred.bboxes,
                             torch.tensor(boxes, dtype=torch.float32),
                             torch.zeros(6, dtype=torch.long),
                             5 if last_is_ignore else 6, topk=4)
    assert torch.equal(got, ref)


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


def test_topk_ties_take_the_first_points():
    """Equal costs (every point predicts the same box and scores): each row
    takes its first ``topk`` inside points in point order (spec: ties go to
    the first index; torch.topk leaves that choice unspecified)."""
    grid = torch.stack(torch.meshgrid(torch.arange(10.), torch.arange(10.),
                                      indexing='xy'), -1).reshape(-1, 2) * 8
    num = len(grid)
    pred = preds(grid, torch.full((num, 1), 0.3),
                 torch.tensor([[10., 10., 60., 90.]]).expand(num, 4))
    # every point inside, every cost equal: the first 7 points win
    res = build(topk=7).assign(pred, gts([[-1., -1., 100., 100.]]))
    assert torch.equal((res.gt_inds > 0).nonzero()[:, 0], torch.arange(7))
