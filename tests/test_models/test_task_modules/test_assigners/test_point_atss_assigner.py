"""PointATSSAssigner (DeFCN's ATSS row, algorithms.md section 7) against an
independent restatement of ATSS on the points of an anchor-free head:

- each point stands for a square anchor of side 8 x stride centred on it;
- per level, each GT's candidates are the 9 points whose centres are
  nearest to the GT centre (ties: the first index);
- threshold = mean + standard deviation (unbiased) of the candidates'
  anchor IoUs; a candidate is positive when its IoU is >= the threshold and
  the point is strictly inside the GT box by more than 0.01 on all sides;
- a point positive for several GTs goes to the highest IoU (first GT on
  ties); ignore regions take no part.
"""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmlla.models.task_modules.assigners import PointATSSAssigner

TOPK = 9
ANCHOR_SCALE = 8.0


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] -
                                                            b[1]) - inter
    return inter / union if union > 0 else 0.0


def atss_restated(priors, gt_boxes, levels, topk=TOPK,
                  anchor_scale=ANCHOR_SCALE, stats=None):
    """Returns gt_inds (A,) (0 background, g + 1) and the IoU (G, A) of
    the anchors with the GTs, in float64."""
    num, num_gts = len(priors), len(gt_boxes)
    anchors = [[x - anchor_scale * s / 2, y - anchor_scale * s / 2,
                x + anchor_scale * s / 2, y + anchor_scale * s / 2]
               for x, y, s, _ in priors]
    ious = np.array([[iou(anchors[a], gt) for a in range(num)]
                     for gt in gt_boxes]).reshape(num_gts, num)
    positive = np.zeros((num_gts, num), dtype=bool)
    near_threshold = []
    for g, (x1, y1, x2, y2) in enumerate(gt_boxes):
        gx, gy = (x1 + x2) / 2, (y1 + y2) / 2
        cands = []
        start = 0
        for n in levels:
            dist = {a: (priors[a, 0] - gx)**2 + (priors[a, 1] - gy)**2
                    for a in range(start, start + n)}
            cands += sorted(dist, key=lambda a: (dist[a], a))[:min(topk, n)]
            start += n
        vals = ious[g, cands]
        mean = vals.sum() / len(vals)
        thr = mean + np.sqrt(((vals - mean)**2).sum() / (len(vals) - 1))
        for a in cands:
            x, y = priors[a, 0], priors[a, 1]
            inside = min(x - x1, y - y1, x2 - x, y2 - y) > 0.01
            if ious[g, a] >= thr and inside:
                positive[g, a] = True
            if 0 < abs(ious[g, a] - thr) < 1e-9:
                near_threshold.append((g, a))
    owner = np.zeros(num, dtype=np.int64)
    for a in range(num):
        best = None
        for g in range(num_gts):
            if positive[g, a] and (best is None or ious[g, a] > ious[best, a]):
                best = g
        if best is not None:
            owner[a] = best + 1
    if stats is not None:
        stats['conflicts'] = int((positive.sum(0) > 1).sum())
        stats['near_threshold'] = near_threshold
    return owner, ious


def grid(sizes_strides):
    pts = []
    for n, s in sizes_strides:
        for j in range(n):
            for i in range(n):
                pts.append([(i + 0.5) * s, (j + 0.5) * s, s, s])
    return np.array(pts, dtype=np.float64)


LEVELS3 = ((16, 8), (8, 16), (4, 32))


def crowded_gts(seed, num_gts, extent=128, quantum=None):
    rng = np.random.default_rng(seed)
    c = rng.uniform(4, extent - 4, size=(num_gts, 2))
    s = rng.uniform(8, 120, size=(num_gts, 2))
    boxes = np.concatenate([c - s / 2, c + s / 2], axis=1)
    if quantum is not None:
        # coordinates on a coarse grid: GT centres fall exactly between
        # points, so centre distances tie
        boxes = np.round(boxes / quantum) * quantum
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + quantum)
    return boxes


def run(priors, gt_boxes, levels, dtype=torch.float64, ignore=None,
        **kwargs):
    pred = InstanceData(priors=torch.tensor(priors, dtype=dtype))
    gt = InstanceData(
        bboxes=torch.tensor(gt_boxes, dtype=dtype),
        labels=torch.arange(len(gt_boxes)) % 3)
    return PointATSSAssigner(**kwargs).assign(
        pred, gt, ignore, num_level_priors=levels)


@pytest.mark.parametrize('seed,num_gts,quantum', [(0, 6, None),
                                                  (1, 20, None),
                                                  (2, 40, None),
                                                  (3, 20, 8.0),
                                                  (4, 40, 8.0),
                                                  (5, 30, 4.0)])
def test_matches_restatement_on_crowded_cases(seed, num_gts, quantum):
    priors = grid(LEVELS3)
    levels = [n * n for n, _ in LEVELS3]
    gt_boxes = crowded_gts(seed, num_gts, quantum=quantum)
    stats = {}
    expected, ious = atss_restated(priors, gt_boxes, levels, stats=stats)
    assert not stats['near_threshold']  # the comparison is well posed
    res = run(priors, gt_boxes, levels)
    assert res.gt_inds.tolist() == expected.tolist()
    pos = expected > 0
    labels = (np.arange(num_gts) % 3)
    assert res.labels.numpy()[pos].tolist() == \
        labels[expected[pos] - 1].tolist()
    assert (res.labels.numpy()[~pos] == -1).all()
    assert res.num_gts == num_gts
    # max_overlaps of positives: the anchor IoU with their GT
    for a in np.nonzero(pos)[0]:
        assert res.max_overlaps[a].item() == pytest.approx(
            ious[expected[a] - 1, a], abs=1e-6)
    assert pos.sum() > num_gts // 2
    if num_gts >= 20:
        assert stats['conflicts'] > 0


def test_float32_matches_restatement():
    priors = grid(LEVELS3)
    levels = [n * n for n, _ in LEVELS3]
    gt_boxes = crowded_gts(7, 25).astype(np.float32).astype(np.float64)
    stats = {}
    expected, _ = atss_restated(priors, gt_boxes, levels, stats=stats)
    res = run(priors, gt_boxes, levels, dtype=torch.float32)
    assert res.gt_inds.tolist() == expected.tolist()


def test_anchor_side_is_8_strides():
    """One GT equal to the anchor of point (60, 60) at stride 8 (side 64):
    that point is a positive with anchor IoU exactly 1."""
    priors = grid(LEVELS3)
    levels = [n * n for n, _ in LEVELS3]
    gt_boxes = np.array([[28., 28., 92., 92.]])
    expected, ious = atss_restated(priors, gt_boxes, levels)
    a = 7 * 16 + 7  # (60, 60) on level 0
    assert ious[0, a] == 1.0 and expected[a] == 1
    res = run(priors, gt_boxes, levels)
    assert res.gt_inds.tolist() == expected.tolist()
    assert res.max_overlaps[a].item() == pytest.approx(1.0)


def test_distance_ties_take_first_index():
    """GT centre (64, 72): on level 0 (points at 4 + 8 i) the nearest ring
    has 4 points, the next ring 8 points at the same distance, of which 5
    are candidates: the first 5 in row-major order. Which five changes the
    threshold and the positives."""
    priors = grid(LEVELS3)
    levels = [n * n for n, _ in LEVELS3]
    found = 0
    for box in ([32., 40., 96., 104.], [40., 24., 88., 120.],
                [16., 56., 112., 88.], [56., 40., 72., 104.]):
        gt_boxes = np.array([box])
        expected, _ = atss_restated(priors, gt_boxes, levels)
        res = run(priors, gt_boxes, levels)
        assert res.gt_inds.tolist() == expected.tolist(), box
        found += 1
    assert found == 4


def test_inside_margin_001():
    """A candidate with high IoU is positive only when it is inside the GT
    box by more than 0.01 on every side: 0 and 0.005 are not enough, 0.02
    is."""
    levels = [16 * 16]
    priors = grid(((16, 8), ))
    for margin, is_pos in ((0.0, False), (0.005, False), (0.02, True)):
        # the point (60, 60) is `margin` inside the left side of a 16 x 32
        # box, whose 9 candidates include it with an IoU above threshold
        gt_boxes = np.array([[60. - margin, 44., 76. - margin, 76.]])
        expected, ious = atss_restated(priors, gt_boxes, levels)
        a = 7 * 16 + 7
        assert bool(expected[a]) == is_pos
        res = run(priors, gt_boxes, levels)
        assert res.gt_inds.tolist() == expected.tolist(), margin
        res = run(priors, gt_boxes, levels, dtype=torch.float32)
        assert bool(res.gt_inds[a]) == is_pos, margin


def test_threshold_is_unbiased_std():
    """A case where one candidate lies between mean + std(N) and
    mean + std(N-1): not positive."""
    levels = [16 * 16]
    priors = grid(((16, 8), ))
    hits = 0
    rng = np.random.default_rng(11)
    for _ in range(400):
        gt_boxes = crowded_gts(int(rng.integers(1 << 30)), 1)
        expected, ious = atss_restated(priors, gt_boxes, levels)
        x1, y1, x2, y2 = gt_boxes[0]
        gx, gy = (x1 + x2) / 2, (y1 + y2) / 2
        d = (priors[:, 0] - gx)**2 + (priors[:, 1] - gy)**2
        cands = np.argsort(d, kind='stable')[:TOPK]
        vals = ious[0, cands]
        t0 = vals.mean() + vals.std(ddof=0)
        t1 = vals.mean() + vals.std(ddof=1)
        inside = np.minimum.reduce([priors[cands, 0] - x1,
                                    priors[cands, 1] - y1,
                                    x2 - priors[cands, 0],
                                    y2 - priors[cands, 1]]) > 0.01
        between = (vals >= t0 + 1e-9) & (vals < t1 - 1e-9) & inside
        if between.any():
            res = run(priors, gt_boxes, levels)
            assert res.gt_inds.tolist() == expected.tolist()
            assert (res.gt_inds[cands[between]] == 0).all()
            hits += 1
            if hits == 3:
                break
    assert hits == 3


def test_conflicts_go_to_highest_iou_first_gt_on_ties():
    priors = grid(LEVELS3)
    levels = [n * n for n, _ in LEVELS3]
    # two overlapping GTs sharing positives; the bigger one listed first
    gt_boxes = np.array([[20., 20., 100., 100.], [30., 30., 90., 90.]])
    stats = {}
    expected, ious = atss_restated(priors, gt_boxes, levels, stats=stats)
    assert stats['conflicts'] > 0
    assert (expected == 2).any()
    res = run(priors, gt_boxes, levels)
    assert res.gt_inds.tolist() == expected.tolist()
    # identical GTs: every shared positive goes to the first
    gt_boxes = np.array([[30., 30., 90., 90.]] * 2)
    expected, _ = atss_restated(priors, gt_boxes, levels)
    assert (expected == 1).any() and not (expected == 2).any()
    res = run(priors, gt_boxes, levels)
    assert res.gt_inds.tolist() == expected.tolist()


@pytest.mark.parametrize('seed', [20, 21])
def test_ignore_regions_take_no_part(seed):
    priors = grid(LEVELS3)
    levels = [n * n for n, _ in LEVELS3]
    gt_boxes = crowded_gts(seed, 15)
    rng = np.random.default_rng(seed)
    ign = np.concatenate([gt_boxes[:5] + rng.uniform(-2, 2, size=(5, 4)),
                          [[0., 0., 128., 128.]]])
    ignore = InstanceData(bboxes=torch.tensor(ign))
    without = run(priors, gt_boxes, levels)
    with_ign = run(priors, gt_boxes, levels, ignore=ignore)
    assert with_ign.gt_inds.tolist() == without.gt_inds.tolist()
    assert with_ign.labels.tolist() == without.labels.tolist()
    assert torch.equal(with_ign.max_overlaps, without.max_overlaps)
    assert (with_ign.gt_inds >= 0).all()
    expected, _ = atss_restated(priors, gt_boxes, levels)
    assert with_ign.gt_inds.tolist() == expected.tolist()


def test_needs_num_level_priors_and_handles_empty():
    priors = torch.tensor(grid(((4, 8), )))
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 16., 16.]]),
                      labels=torch.tensor([0]))
    with pytest.raises(ValueError):
        PointATSSAssigner().assign(InstanceData(priors=priors), gt)
    empty = InstanceData(bboxes=torch.zeros(0, 4, dtype=torch.float64),
                         labels=torch.zeros(0, dtype=torch.long))
    res = PointATSSAssigner().assign(
        InstanceData(priors=priors), empty,
        InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.]])),
        num_level_priors=[16])
    assert res.gt_inds.tolist() == [0] * 16
    assert res.labels.tolist() == [-1] * 16
