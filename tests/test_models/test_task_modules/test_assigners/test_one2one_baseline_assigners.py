"""The hand-crafted one-to-one baselines of DeFCN (algorithms.md section 5:
Anchor, Center, Foreground loss) and DeFCN's FCOS rule (section 7), each
against an independent restatement written here (float64 numpy, plain
loops, scipy's ``linear_sum_assignment`` on the full cost matrix). Ignore
regions take no part in any of them."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from mmlla.models.task_modules.assigners import (FCOSStyleAssigner,
                                                 ForegroundLossAssigner,
                                                 One2OneAnchorAssigner,
                                                 One2OneCenterAssigner)

FCOS_RANGES = [(-1, 64), (64, 128), (128, 256), (256, 512), (512, math.inf)]


# --------------------------------------------------------------------------
# shared restatement pieces
# --------------------------------------------------------------------------
def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] -
                                                            b[1]) - inter
    return inter / union if union > 0 else 0.0


def giou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] -
                                                            b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (
        max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def in_centre_square(x, y, s, box, radius):
    """Section 2's prior: strictly inside the box and, for radius > 0,
    |x - cx| < r * s and |y - cy| < r * s."""
    x1, y1, x2, y2 = box
    inside = x - x1 > 0 and y - y1 > 0 and x2 - x > 0 and y2 - y > 0
    if radius <= 0:
        return inside
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return inside and abs(x - cx) < radius * s and abs(y - cy) < radius * s


def max_side(x, y, box):
    return max(x - box[0], y - box[1], box[2] - x, box[3] - y)


def grid(sizes_strides):
    pts = []
    for n, s in sizes_strides:
        for j in range(n):
            for i in range(n):
                pts.append([(i + 0.5) * s, (j + 0.5) * s, s, s])
    return np.array(pts, dtype=np.float64)


def level_of(levels):
    out = []
    for lvl, n in enumerate(levels):
        out += [lvl] * n
    return out


def gts(boxes, labels=None, dtype=torch.float32):
    boxes = torch.tensor(boxes, dtype=dtype)
    if labels is None:
        labels = [0] * len(boxes)
    return InstanceData(bboxes=boxes, labels=torch.tensor(labels))


def random_boxes(rng, num, extent, min_side, max_side_, quantum=None):
    c = rng.uniform(0, extent, size=(num, 2))
    s = rng.uniform(min_side, max_side_, size=(num, 2))
    boxes = np.concatenate([c - s / 2, c + s / 2], axis=1)
    if quantum is not None:
        boxes = np.round(boxes / quantum) * quantum
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + quantum)
    return boxes


def assert_same(a, b):
    assert a.num_gts == b.num_gts
    assert a.gt_inds.tolist() == b.gt_inds.tolist()
    assert a.labels.tolist() == b.labels.tolist()
    assert torch.equal(a.max_overlaps, b.max_overlaps)


def smallest_area_owner(ok, boxes):
    """Per point the allowed GT of smallest area, first GT on ties."""
    num_gts, num = ok.shape
    owner = np.zeros(num, dtype=np.int64)
    for a in range(num):
        best = None
        for g in range(num_gts):
            area = (boxes[g, 2] - boxes[g, 0]) * (boxes[g, 3] - boxes[g, 1])
            if ok[g, a] and (best is None or area < best[1]):
                best = (g, area)
        if best is not None:
            owner[a] = best[0] + 1
    return owner


# --------------------------------------------------------------------------
# Anchor
# --------------------------------------------------------------------------
def anchor_restated(priors, boxes, scale=4.0):
    """Square anchors of side scale x stride centred on the points; each GT
    its single highest-IoU anchor (first index on ties), no threshold;
    conflicts to the highest IoU (first GT on ties)."""
    anchors = [[x - scale * s / 2, y - scale * s / 2, x + scale * s / 2,
                y + scale * s / 2] for x, y, s, _ in priors]
    ious = np.array([[iou(an, b) for an in anchors] for b in boxes])
    owner = np.zeros(len(priors), dtype=np.int64)
    claim = np.full(len(priors), -np.inf)
    conflicts = 0
    for g in range(len(boxes)):
        best = 0
        for a in range(1, len(priors)):
            if ious[g, a] > ious[g, best]:
                best = a
        if claim[best] > -np.inf:
            conflicts += 1
        if ious[g, best] > claim[best]:
            claim[best] = ious[g, best]
            owner[best] = g + 1
    return owner, ious, conflicts


def test_anchor_baseline_hand_case():
    priors = torch.tensor(grid(((4, 8), (2, 16))), dtype=torch.float32)
    # anchors: level 0 side 32 centred on (4+8i, 4+8j); level 1 side 64
    assigner = One2OneAnchorAssigner(anchor_scale=4)
    anchors = assigner.point_anchors(priors)
    assert anchors[0].tolist() == [-12., -12., 20., 20.]
    assert anchors[16].tolist() == [-24., -24., 40., 40.]
    # GT0 is exactly the anchor of point 5 (centre (12, 12)) -> IoU 1
    g = gts([[-4., -4., 28., 28.], [-24., -24., 40., 40.],
             [-3., -3., 28., 28.]])
    res = assigner.assign(InstanceData(priors=priors), g)
    # GT0 and GT2 both prefer point 5; GT0 has IoU 1 and wins even though
    # GT2 is listed later; GT1 takes anchor 16 (IoU 1); GT2 gets nothing
    assert res.gt_inds[5] == 1 and res.gt_inds[16] == 2
    assert (res.gt_inds > 0).sum() == 2
    assert res.max_overlaps[5] == pytest.approx(1.0)
    # listed the other way round, the higher IoU still wins
    g = gts([[-3., -3., 28., 28.], [-24., -24., 40., 40.],
             [-4., -4., 28., 28.]])
    res = assigner.assign(InstanceData(priors=priors), g)
    assert res.gt_inds[5] == 3 and res.gt_inds[16] == 2
    assert (res.gt_inds > 0).sum() == 2


@pytest.mark.parametrize('seed,num_gts,quantum', [(0, 10, None),
                                                  (1, 40, None),
                                                  (2, 40, 8.0),
                                                  (3, 60, 16.0)])
def test_anchor_baseline_matches_restatement(seed, num_gts, quantum):
    rng = np.random.default_rng(seed)
    priors = grid(((16, 8), (8, 16), (4, 32)))
    boxes = random_boxes(rng, num_gts, 128, 8, 120, quantum)
    if quantum is not None:
        boxes[1] = boxes[0]  # duplicates: equal IoUs, first GT wins
    expected, ious, conflicts = anchor_restated(priors, boxes)
    res = One2OneAnchorAssigner().assign(
        InstanceData(priors=torch.tensor(priors)),
        gts(boxes, list(range(num_gts)), dtype=torch.float64))
    assert res.gt_inds.tolist() == expected.tolist()
    for a in np.nonzero(expected)[0]:
        assert res.max_overlaps[a].item() == pytest.approx(
            ious[expected[a] - 1, a], abs=1e-6)
        assert res.labels[a].item() == expected[a] - 1
    if num_gts >= 40:
        assert conflicts > 0
    if quantum is not None:
        assert expected[np.argmax(ious[0])] == 1


def test_anchor_baseline_ignore_regions_take_no_part():
    rng = np.random.default_rng(5)
    priors = torch.tensor(grid(((16, 8), (8, 16), (4, 32))))
    boxes = random_boxes(rng, 20, 128, 8, 120)
    g = gts(boxes, dtype=torch.float64)
    ignore = InstanceData(bboxes=torch.tensor(
        np.concatenate([boxes[:5], [[0., 0., 128., 128.]]])))
    assigner = One2OneAnchorAssigner()
    res = assigner.assign(InstanceData(priors=priors), g, ignore)
    assert_same(res, assigner.assign(InstanceData(priors=priors), g))
    assert (res.gt_inds >= 0).all()


# --------------------------------------------------------------------------
# Center
# --------------------------------------------------------------------------
def center_restated(priors, boxes, levels, ranges=FCOS_RANGES):
    """Per GT and level the one point nearest (Euclidean) to the GT centre
    (first index on ties), kept iff max(l, t, r, b) is in the level's range
    (inclusive), no inside-box test; conflicts to the smallest area."""
    ok = np.zeros((len(boxes), len(priors)), dtype=bool)
    for g, box in enumerate(boxes):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        start = 0
        for n, (lo, hi) in zip(levels, ranges):
            best, best_d = None, None
            for a in range(start, start + n):
                d = math.hypot(priors[a, 0] - cx, priors[a, 1] - cy)
                if best is None or d < best_d:
                    best, best_d = a, d
            m = max_side(priors[best, 0], priors[best, 1], box)
            ok[g, best] = lo <= m <= hi
            start += n
    return smallest_area_owner(ok, boxes), ok


FIVE_LEVELS = ((32, 8), (16, 16), (8, 32), (4, 64), (2, 128))


@pytest.mark.parametrize('seed,num_gts,quantum', [(0, 10, None),
                                                  (1, 40, None),
                                                  (2, 40, 8.0)])
def test_center_baseline_matches_restatement(seed, num_gts, quantum):
    rng = np.random.default_rng(seed)
    priors = grid(FIVE_LEVELS)
    levels = [n * n for n, _ in FIVE_LEVELS]
    boxes = random_boxes(rng, num_gts, 256, 4, 500, quantum)
    expected, ok = center_restated(priors, boxes, levels)
    res = One2OneCenterAssigner().assign(
        InstanceData(priors=torch.tensor(priors)),
        gts(boxes, dtype=torch.float64), num_level_priors=levels)
    assert res.gt_inds.tolist() == expected.tolist()
    per_gt = ok.sum(axis=1)
    assert (per_gt == 0).any() or (per_gt > 1).any() or seed == 0
    if num_gts >= 40:
        assert (ok.sum(axis=0) > 1).any()  # a conflict to settle


def test_center_baseline_hand_case():
    priors = torch.tensor(grid(((4, 8), (2, 16))), dtype=torch.float32)
    num_level = [16, 4]
    assigner = One2OneCenterAssigner(regress_ranges=((-1, 10), (10, 1e8)))
    # GT A [7, 7, 19, 19], centre (13, 13): nearest level-0 point (12, 12)
    # (index 5), max distance 7 -> in level 0's range; nearest level-1 point
    # (8, 8) (index 16), max distance 11 -> in level 1's range.
    # GT B [4, 4, 36, 36], centre (20, 20): level-0 (20, 20) (index 10) has
    # max distance 16 -> out; level-1 (24, 24) (index 19), 20 -> in.
    # GT C [0, 0, 20, 20], centre (10, 10): level-0 (12, 12) max distance 12
    # -> out; level-1 (8, 8) max distance 12 -> in, but GT A (area 144 <
    # 400) also wants point 16 and wins it, though listed first.
    g = gts([[0., 0., 20., 20.], [7., 7., 19., 19.], [4., 4., 36., 36.]])
    res = assigner.assign(InstanceData(priors=priors), g,
                          num_level_priors=num_level)
    expected = torch.zeros(20, dtype=torch.long)
    expected[5] = 2
    expected[16] = 2
    expected[19] = 3
    assert res.gt_inds.tolist() == expected.tolist()
    with pytest.raises(ValueError):
        assigner.assign(InstanceData(priors=priors), g)


def test_center_baseline_range_bounds_inclusive():
    """GT [8, 8, 132, 132], centre (70, 70): the nearest level-0 point
    (68, 68) and the nearest level-1 point (72, 72) both have max(l, t, r,
    b) exactly 64, in [-1, 64] and in [64, 128]: two positives. Growing the
    box by 0.5 on the far sides moves level 0 out (64.5); shrinking it
    moves level 1 out (63.5)."""
    priors = grid(FIVE_LEVELS)
    levels = [n * n for n, _ in FIVE_LEVELS]
    p0 = 8 * 32 + 8  # (68, 68) on level 0
    p1 = 1024 + 4 * 16 + 4  # (72, 72) on level 1
    assert priors[p0, :2].tolist() == [68., 68.]
    assert priors[p1, :2].tolist() == [72., 72.]
    for box, pos in (([8., 8., 132., 132.], [p0, p1]),
                     ([7.5, 7.5, 132.5, 132.5], [p1]),
                     ([8.5, 8.5, 131.5, 131.5], [p0])):
        expected, _ = center_restated(priors, np.array([box]), levels)
        assert np.nonzero(expected)[0].tolist() == pos, box
        for dtype in (torch.float32, torch.float64):
            res = One2OneCenterAssigner().assign(
                InstanceData(priors=torch.tensor(priors, dtype=dtype)),
                gts([box], dtype=dtype), num_level_priors=levels)
            assert res.gt_inds.tolist() == expected.tolist(), box


def test_center_baseline_zero_outside_box_and_ties():
    priors = grid(FIVE_LEVELS)
    levels = [n * n for n, _ in FIVE_LEVELS]
    # a tiny box between points: its nearest level-0 point (12, 12) is
    # outside it, max(l, t, r, b) = 2 in [-1, 64]: a positive anyway
    # (no inside-box test)
    box = [10., 10., 11., 11.]
    expected, _ = center_restated(priors, np.array([box]), levels)
    assert np.nonzero(expected)[0].tolist() == [1 * 32 + 1]
    res = One2OneCenterAssigner().assign(
        InstanceData(priors=torch.tensor(priors)), gts([box]),
        num_level_priors=levels)
    assert res.gt_inds.tolist() == expected.tolist()
    # centre (72, 72) exactly between four level-0 points (68 / 76) and on
    # a level-1 point; h = 61: level 0 max 65 > 64, level 1 max 61 < 64,
    # level 2 (80, 80) max 69 < 128: no positive at all
    box = [11., 11., 133., 133.]
    expected, _ = center_restated(priors, np.array([box]), levels)
    assert not expected.any()
    res = One2OneCenterAssigner().assign(
        InstanceData(priors=torch.tensor(priors)), gts([box]),
        num_level_priors=levels)
    assert res.gt_inds.tolist() == [0] * len(priors)
    # centre (16, 16): four level-0 points at the same distance, the
    # first in row-major order, (12, 12), is the candidate
    box = [0., 0., 32., 32.]
    expected, _ = center_restated(priors, np.array([box]), levels)
    assert expected[1 * 32 + 1] == 1 and expected.sum() == 1
    res = One2OneCenterAssigner().assign(
        InstanceData(priors=torch.tensor(priors, dtype=torch.float32)),
        gts([box]), num_level_priors=levels)
    assert res.gt_inds.tolist() == expected.tolist()


def test_center_baseline_exact_distances_at_large_coordinates():
    """Near-ties far from the origin: the centre is 0.002 px nearer to one
    of two points 8 px apart; a matrix-product distance would lose that."""
    pts = [[800. + 8 * i + 4, 600. + 8 * j + 4, 8., 8.] for j in range(6)
           for i in range(6)]
    priors = np.array(pts)
    for dx in (0.002, -0.002):
        cx = 808. + dx  # between 804 and 812
        box = [cx - 20., 620. - 20., cx + 20., 620. + 20.]
        expected, _ = center_restated(priors, np.array([box]), [36],
                                      ranges=[(-1, 64)])
        res = One2OneCenterAssigner(regress_ranges=((-1, 64), )).assign(
            InstanceData(priors=torch.tensor(priors, dtype=torch.float32)),
            gts([box]), num_level_priors=[36])
        assert res.gt_inds.tolist() == expected.tolist()


def test_center_baseline_euclidean_not_other_metrics():
    """On a full grid every separable metric finds the same nearest point;
    on irregular points the Euclidean one differs from L1 and L-inf:
    relative to the centre, (3, 3) is at 4.24 (L1 6, L-inf 3), (0, 4.5) at
    4.5 (L1 4.5), (4, 0.5) at 4.03 (L-inf 4)."""
    box = [80., 80., 120., 120.]  # centre (100, 100)
    for pts, nearest in (([[103., 103.], [100., 104.5]], 0),
                         ([[103., 103.], [104., 100.5]], 1)):
        priors = np.array([p + [8., 8.] for p in pts])
        expected, _ = center_restated(priors, np.array([box]), [2],
                                      ranges=[(-1, 64)])
        assert expected.tolist() == [int(a == nearest) for a in range(2)]
        res = One2OneCenterAssigner(regress_ranges=((-1, 64), )).assign(
            InstanceData(priors=torch.tensor(priors, dtype=torch.float32)),
            gts([box]), num_level_priors=[2])
        assert res.gt_inds.tolist() == expected.tolist()


def test_center_baseline_ignore_regions_take_no_part():
    rng = np.random.default_rng(9)
    priors = torch.tensor(grid(FIVE_LEVELS))
    levels = [n * n for n, _ in FIVE_LEVELS]
    boxes = random_boxes(rng, 20, 256, 4, 400)
    g = gts(boxes, dtype=torch.float64)
    ignore = InstanceData(bboxes=torch.tensor(
        np.concatenate([boxes[:5], [[0., 0., 20., 20.]]])))
    assigner = One2OneCenterAssigner()
    res = assigner.assign(InstanceData(priors=priors), g, ignore,
                          num_level_priors=levels)
    assert_same(res, assigner.assign(InstanceData(priors=priors), g,
                                     num_level_priors=levels))
    assert (res.gt_inds >= 0).all()
    expected, _ = center_restated(grid(FIVE_LEVELS), boxes, levels)
    assert res.gt_inds.tolist() == expected.tolist()


# --------------------------------------------------------------------------
# Foreground loss
# --------------------------------------------------------------------------
def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def foreground_cost(priors, logits, bboxes, boxes, labels, radius,
                    alpha=0.25, gamma=2.0, reg_weight=2.0, probs=None):
    """Dense (G, A) float64 cost: sum over the C classes of the sigmoid
    focal loss of the logits against the one-hot target, + 2 (1 - GIoU);
    1e8 outside the prior. With ``probs`` (no logits): the logs of the
    probabilities clamped at 1e-12."""
    num_classes = (logits if logits is not None else probs).shape[1]
    cost = np.zeros((len(boxes), len(priors)))
    for g, box in enumerate(boxes):
        for a in range(len(priors)):
            if not in_centre_square(priors[a, 0], priors[a, 1],
                                    priors[a, 2], box, radius):
                cost[g, a] = 1e8
                continue
            cls = 0.0
            for c in range(num_classes):
                if logits is not None:
                    x = logits[a, c]
                    p = 1 / (1 + math.exp(-x))
                    log_p, log_1mp = log_sigmoid(x), log_sigmoid(-x)
                else:
                    p = probs[a, c]
                    log_p = math.log(max(p, 1e-12))
                    log_1mp = math.log(max(1 - p, 1e-12))
                if c == labels[g]:
                    cls += -alpha * (1 - p)**gamma * log_p
                else:
                    cls += -(1 - alpha) * p**gamma * log_1mp
            cost[g, a] = cls + reg_weight * (1 - giou(bboxes[a], box))
    return cost


def foreground_case(seed, num_gts, num_classes=3, tiny=0):
    rng = np.random.default_rng(seed)
    priors = grid(((16, 8), (8, 16), (4, 32)))
    num = len(priors)
    logits = rng.normal(0, 3, size=(num, num_classes))
    ctr = priors[:, :2] + rng.normal(0, 3, size=(num, 2))
    wh = rng.uniform(4, 60, size=(num, 2))
    bboxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1)
    boxes = random_boxes(rng, num_gts, 128, 8, 100)
    for i in range(tiny):
        boxes[i] = [9., 9., 11., 11.]  # no point inside
    labels = rng.integers(0, num_classes, size=num_gts)
    return priors, logits, bboxes, boxes, labels


def split_total(cost, gt_inds):
    """(number of 1e8 pairs, sum of the other pairs' costs)."""
    pairs = [cost[gt_inds[a] - 1, a] for a in np.nonzero(gt_inds > 0)[0]]
    outside = sum(1 for c in pairs if c >= 1e8)
    return outside, sum(c for c in pairs if c < 1e8)


@pytest.mark.parametrize('seed,num_gts,radius,tiny,use_logits', [
    (0, 5, 1.5, 0, True), (1, 20, 1.5, 2, True), (2, 30, 1.5, 0, True),
    (3, 15, 0.0, 1, True), (4, 20, 1.5, 1, False)
])
def test_foreground_loss_against_dense_scipy(seed, num_gts, radius, tiny,
                                             use_logits):
    priors, logits, bboxes, boxes, labels = foreground_case(
        seed, num_gts, tiny=tiny)
    probs32 = torch.tensor(logits, dtype=torch.float32).sigmoid()
    pred = InstanceData(
        priors=torch.tensor(priors, dtype=torch.float32),
        scores=probs32,
        bboxes=torch.tensor(bboxes, dtype=torch.float32))
    if use_logits:
        pred.logits = torch.tensor(logits, dtype=torch.float32)
        cost = foreground_cost(priors, logits, bboxes, boxes, labels, radius)
    else:
        cost = foreground_cost(priors, None, bboxes, boxes, labels, radius,
                               probs=probs32.double().numpy())
    res = ForegroundLossAssigner(
        alpha=0.25, gamma=2.0, reg_weight=2.0,
        center_sampling_radius=radius).assign(
            pred, gts(boxes, labels.tolist()))
    rows, cols = linear_sum_assignment(cost)
    gt_inds = res.gt_inds.numpy()
    for g in range(num_gts):
        assert (gt_inds == g + 1).sum() == 1
    assert (gt_inds > 0).sum() == num_gts
    scipy_inds = np.zeros(len(priors), dtype=np.int64)
    scipy_inds[cols] = rows + 1
    ours_out, ours_in = split_total(cost, gt_inds)
    ref_out, ref_in = split_total(cost, scipy_inds)
    assert ours_out == ref_out == tiny
    assert ours_in == pytest.approx(ref_in, rel=1e-5, abs=1e-4)
    pos = gt_inds > 0
    assert res.labels.numpy()[pos].tolist() == \
        labels[gt_inds[pos] - 1].tolist()


def test_foreground_loss_uses_logits_when_given():
    """Saturated logits: sigmoid(-120) is 0 and sigmoid(120) is 1 in float32,
    so the clamped probabilities cap log p at log(1e-12) = -27.6 where the
    logit gives -120. One GT of class 0 [0, 0, 40, 40]; point 0 has logit
    -120 and a perfect box (cost 0.25 x 120 = 30 from the logits, 6.9 from
    the clamped probability), point 1 logit -25 and a box of GIoU 0.5
    (6.25 + 1 = 7.25 both ways), point 2 logits +120 and a perfect box
    (class 1: 0.75 x 120 = 90 vs 20.7). The logits pick point 1, the
    clamped probabilities point 0."""
    priors = np.array([[20., 20., 8., 8.], [24., 20., 8., 8.],
                       [16., 20., 8., 8.], [100., 100., 8., 8.]])
    logits = np.array([[-120., -120.], [-25., -120.], [120., 120.],
                       [0., 0.]])
    box = [0., 0., 40., 40.]
    bboxes = np.array([box, [0., 0., 40., 20.], box, [90., 90., 110., 110.]])
    labels = [0]
    pred = InstanceData(
        priors=torch.tensor(priors, dtype=torch.float32),
        scores=torch.tensor(logits, dtype=torch.float32).sigmoid(),
        bboxes=torch.tensor(bboxes, dtype=torch.float32))
    assert pred.scores[0, 0].item() == 0.0 and pred.scores[2, 1] == 1.0
    with_logits = pred.clone()
    with_logits.logits = torch.tensor(logits, dtype=torch.float32)
    assigner = ForegroundLossAssigner(center_sampling_radius=1.5)

    cost = foreground_cost(priors, logits, bboxes, np.array([box]), labels,
                           1.5)
    assert cost[0, :3] == pytest.approx([30., 7.25, 90.], abs=1e-6)
    res = assigner.assign(with_logits, gts([box], labels))
    assert res.gt_inds.tolist() == [0, 1, 0, 0]
    assert int(np.argmin(cost[0])) == 1

    clamped = foreground_cost(priors, None, bboxes, np.array([box]), labels,
                              1.5, probs=pred.scores.double().numpy())
    assert clamped[0, :3] == pytest.approx(
        [-0.25 * math.log(1e-12), 7.25, -0.75 * math.log(1e-12)], abs=1e-6)
    assert int(np.argmin(clamped[0])) == 0
    res = assigner.assign(pred, gts([box], labels))
    assert res.gt_inds.tolist() == [1, 0, 0, 0]


def test_foreground_loss_ignore_regions_take_no_part():
    priors, logits, bboxes, boxes, labels = foreground_case(6, 15, tiny=1)
    pred = InstanceData(
        priors=torch.tensor(priors, dtype=torch.float32),
        scores=torch.tensor(logits, dtype=torch.float32).sigmoid(),
        bboxes=torch.tensor(bboxes, dtype=torch.float32),
        logits=torch.tensor(logits, dtype=torch.float32))
    g = gts(boxes, labels.tolist())
    ignore = InstanceData(bboxes=torch.tensor(
        np.concatenate([boxes[:5], [[0., 0., 128., 128.]]]),
        dtype=torch.float32))
    assigner = ForegroundLossAssigner(center_sampling_radius=1.5)
    res = assigner.assign(pred, g, ignore)
    assert_same(res, assigner.assign(pred, g))
    assert (res.gt_inds >= 0).all()
    assert (res.gt_inds > 0).sum() == 15


# --------------------------------------------------------------------------
# DeFCN's FCOS row
# --------------------------------------------------------------------------
def fcos_restated(priors, boxes, levels, radius=1.5, ranges=FCOS_RANGES):
    """Centre square radius x stride intersected with the box (strict),
    max(l, t, r, b) in the level's range (inclusive), smallest area."""
    lvl = level_of(levels)
    ok = np.zeros((len(boxes), len(priors)), dtype=bool)
    for g, box in enumerate(boxes):
        for a, (x, y, s, _) in enumerate(priors):
            lo, hi = ranges[lvl[a]]
            ok[g, a] = in_centre_square(x, y, s, box, radius) and \
                lo <= max_side(x, y, box) <= hi
    return smallest_area_owner(ok, boxes), ok


@pytest.mark.parametrize('seed,num_gts,quantum,radius', [
    (0, 10, None, 1.5), (1, 40, None, 1.5), (2, 40, 8.0, 1.5),
    (3, 30, 4.0, 0.0)
])
def test_fcos_style_matches_restatement(seed, num_gts, quantum, radius):
    rng = np.random.default_rng(seed)
    priors = grid(FIVE_LEVELS)
    levels = [n * n for n, _ in FIVE_LEVELS]
    boxes = random_boxes(rng, num_gts, 256, 8, 500, quantum)
    expected, ok = fcos_restated(priors, boxes, levels, radius)
    res = FCOSStyleAssigner(center_sampling_radius=radius).assign(
        InstanceData(priors=torch.tensor(priors)),
        gts(boxes, dtype=torch.float64), num_level_priors=levels)
    assert res.gt_inds.tolist() == expected.tolist()
    assert (expected > 0).sum() > num_gts  # one-to-many
    if num_gts >= 30:
        assert (ok.sum(axis=0) > 1).any()  # a conflict to settle


def test_fcos_style_edges_and_bounds():
    priors = grid(FIVE_LEVELS)
    levels = [n * n for n, _ in FIVE_LEVELS]
    p0 = 8 * 32 + 8  # (68, 68), stride 8
    p1 = 1024 + 4 * 16 + 4  # (72, 72), stride 16
    # max(l, t, r, b) exactly 64 for both: inclusive on both sides
    box = [8., 8., 132., 132.]
    expected, _ = fcos_restated(priors, np.array([box]), levels)
    assert expected[p0] == 1 and expected[p1] == 1
    res = FCOSStyleAssigner().assign(
        InstanceData(priors=torch.tensor(priors, dtype=torch.float32)),
        gts([box]), num_level_priors=levels)
    assert res.gt_inds.tolist() == expected.tolist()
    # a box whose edge passes through points: x1 = 60 puts (60, y) on it
    box = [60., 52., 84., 84.]  # centre (72, 68)
    expected, ok = fcos_restated(priors, np.array([box]), levels)
    assert not ok[0, [a for a in range(len(priors))
                      if priors[a, 0] == 60.]].any()
    assert ok[0].any()
    res = FCOSStyleAssigner().assign(
        InstanceData(priors=torch.tensor(priors, dtype=torch.float32)),
        gts([box]), num_level_priors=levels)
    assert res.gt_inds.tolist() == expected.tolist()
    # centre square edge exactly: centre (72, 72) with stride 8 -> 12:
    # level-0 points x = 60 and 84 are at 12 (outside); 68, 76 inside
    box = [40., 40., 104., 104.]
    expected, ok = fcos_restated(priors, np.array([box]), levels)
    xs = {priors[a, 0] for a in np.nonzero(ok[0, :1024])[0]}
    assert xs == {68., 76.}
    res = FCOSStyleAssigner().assign(
        InstanceData(priors=torch.tensor(priors, dtype=torch.float32)),
        gts([box]), num_level_priors=levels)
    assert res.gt_inds.tolist() == expected.tolist()


def test_fcos_style_hand_rule():
    priors = torch.tensor(grid(((4, 8), (2, 16))), dtype=torch.float32)
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
    # smallest area wins a shared point, whatever the order
    res = assigner.assign(InstanceData(priors=priors),
                          gts([[1., 1., 15., 15.], [2., 2., 14., 14.]]),
                          num_level_priors=[16, 4])
    assert res.gt_inds[[0, 1, 4, 5]].tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError):
        assigner.assign(InstanceData(priors=priors), gts([[0, 0, 16, 16]]))


def test_fcos_style_ignore_regions_take_no_part():
    rng = np.random.default_rng(13)
    priors = torch.tensor(grid(FIVE_LEVELS))
    levels = [n * n for n, _ in FIVE_LEVELS]
    boxes = random_boxes(rng, 20, 256, 8, 400)
    g = gts(boxes, dtype=torch.float64)
    ignore = InstanceData(bboxes=torch.tensor(
        np.concatenate([boxes[:5], [[0., 0., 256., 256.]]])))
    assigner = FCOSStyleAssigner()
    res = assigner.assign(InstanceData(priors=priors), g, ignore,
                          num_level_priors=levels)
    assert_same(res, assigner.assign(InstanceData(priors=priors), g,
                                     num_level_priors=levels))
    assert (res.gt_inds >= 0).all()
    expected, _ = fcos_restated(grid(FIVE_LEVELS), boxes, levels)
    assert res.gt_inds.tolist() == expected.tolist()
