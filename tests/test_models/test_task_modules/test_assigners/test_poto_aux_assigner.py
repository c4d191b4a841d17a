"""POTOAuxAssigner against an independent dense restatement of DeFCN's
auxiliary assignment (algorithms.md section 4): per GT and FPN level the 9
points of highest raw quality (ties: first index), pooled; threshold mean +
unbiased std; positive when quality >= threshold and strictly inside the
whole GT box; conflicts to the highest quality (first GT on ties); ignore
regions take no part."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmlla.models.task_modules.assigners import POTOAuxAssigner

ALPHA = 0.8


def raw_quality(scores, bboxes, gt_boxes, labels, alpha=ALPHA):
    """(G, A) p ** (1 - alpha) * IoU ** alpha, float64 loops, no -1."""
    q = np.zeros((len(gt_boxes), len(bboxes)))
    for g, t in enumerate(gt_boxes):
        for a, b in enumerate(bboxes):
            iw = max(0.0, min(b[2], t[2]) - max(b[0], t[0]))
            ih = max(0.0, min(b[3], t[3]) - max(b[1], t[1]))
            inter = iw * ih
            union = (b[2] - b[0]) * (b[3] - b[1]) + (t[2] - t[0]) * (
                t[3] - t[1]) - inter
            q[g, a] = scores[a, labels[g]]**(1 - alpha) * (inter /
                                                          union)**alpha
    return q


def dense_aux_targets(priors, scores, bboxes, gt_boxes, labels, levels,
                      alpha=ALPHA, topk=9, stats=None):
    """The restatement. Returns gt_inds (A,): 0 background, g + 1."""
    num_gts, num = len(gt_boxes), len(priors)
    q = raw_quality(scores, bboxes, gt_boxes, labels, alpha)
    positive = np.zeros((num_gts, num), dtype=bool)
    for g in range(num_gts):
        cands = []
        start = 0
        for n in levels:
            # highest quality first, the first index on ties
            order = sorted(range(start, start + n), key=lambda a: (-q[g, a],
                                                                    a))
            cands += order[:min(topk, n)]
            start += n
        vals = q[g, cands]
        mean = vals.sum() / len(vals)
        std = np.sqrt(((vals - mean)**2).sum() / (len(vals) - 1))
        thr = mean + std
        x1, y1, x2, y2 = gt_boxes[g]
        for a in cands:
            x, y = priors[a, 0], priors[a, 1]
            inside = x - x1 > 0 and y - y1 > 0 and x2 - x > 0 and y2 - y > 0
            if q[g, a] >= thr and inside:
                positive[g, a] = True
    owner = np.zeros(num, dtype=np.int64)
    for a in range(num):
        best = None
        for g in range(num_gts):
            if positive[g, a] and (best is None or q[g, a] > q[best, a]):
                best = g
        if best is not None:
            owner[a] = best + 1
    if stats is not None:
        stats['conflicts'] = int((positive.sum(0) > 1).sum())
        stats['positive'] = positive
        stats['quality'] = q
    return owner


def grid(sizes_strides):
    pts = []
    for n, s in sizes_strides:
        for j in range(n):
            for i in range(n):
                pts.append([(i + 0.5) * s, (j + 0.5) * s, s, s])
    return np.array(pts, dtype=np.float64)


def crowded_case(seed, num_gts, sizes_strides=((12, 8), (6, 16), (3, 32)),
                 num_classes=2):
    rng = np.random.default_rng(seed)
    priors = grid(sizes_strides)
    extent = sizes_strides[0][0] * sizes_strides[0][1]
    num = len(priors)
    scores = rng.uniform(0.01, 0.99, size=(num, num_classes))
    ctr = priors[:, :2] + rng.uniform(-6, 6, size=(num, 2))
    wh = rng.uniform(6, 48, size=(num, 2))
    bboxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1)
    c = rng.uniform(8, extent - 8, size=(num_gts, 2))
    s = rng.uniform(10, 60, size=(num_gts, 2))
    gt_boxes = np.concatenate([c - s / 2, c + s / 2], axis=1)
    labels = rng.integers(0, num_classes, size=num_gts)
    levels = [n * n for n, _ in sizes_strides]
    return priors, scores, bboxes, gt_boxes, labels, levels


def instances(priors, scores, bboxes, gt_boxes, labels, dtype=torch.float64):
    pred = InstanceData(
        priors=torch.tensor(priors, dtype=dtype),
        scores=torch.tensor(scores, dtype=dtype),
        bboxes=torch.tensor(bboxes, dtype=dtype))
    gt = InstanceData(
        bboxes=torch.tensor(gt_boxes, dtype=dtype),
        labels=torch.tensor(labels))
    return pred, gt


@pytest.mark.parametrize('seed,num_gts,sizes_strides', [
    (0, 5, ((8, 8), (4, 16), (2, 32))),
    (1, 12, ((12, 8), (6, 16), (3, 32))),
    (2, 25, ((12, 8), (6, 16), (3, 32))),
    (3, 40, ((12, 8), (6, 16), (3, 32))),
])
def test_aux_targets_match_dense(seed, num_gts, sizes_strides):
    priors, scores, bboxes, gt_boxes, labels, levels = crowded_case(
        seed, num_gts, sizes_strides)
    stats = {}
    expected = dense_aux_targets(priors, scores, bboxes, gt_boxes, labels,
                                 levels, stats=stats)
    pred, gt = instances(priors, scores, bboxes, gt_boxes, labels)
    res = POTOAuxAssigner(alpha=ALPHA, topk=9).assign(
        pred, gt, num_level_priors=levels)
    assert res.gt_inds.tolist() == expected.tolist()
    pos = expected > 0
    assert res.labels.numpy()[pos].tolist() == \
        labels[expected[pos] - 1].tolist()
    assert (res.labels.numpy()[~pos] == -1).all()
    assert pos.sum() > num_gts  # one-to-many
    if num_gts >= 12:
        assert stats['conflicts'] > 0  # the conflict rule is exercised


def test_positive_inside_whole_box_not_centre_square():
    """Positives need only be strictly inside the whole box (COCO's POTO
    prior, the 1.5-stride square, does not apply); a point on the box edge
    is not inside, whatever its quality."""
    gt_box = [0., 0., 200., 200.]  # centre (100, 100)
    # 12 points of stride 8: three perfect ones far from the centre, one
    # perfect one on the left edge, the rest poor
    xy = [(20., 20.), (190., 150.), (100., 180.), (0., 50.), (100., 100.),
          (60., 60.), (140., 140.), (30., 170.), (170., 30.), (50., 120.),
          (120., 50.), (80., 90.)]
    priors = np.array([[x, y, 8., 8.] for x, y in xy])
    bboxes = np.array([gt_box] * 4 + [[x - 5, y - 5, x + 5, y + 5]
                                      for x, y in xy[4:]])
    scores = np.array([[0.99]] * 4 + [[0.3]] * 8)
    labels = np.array([0])
    gts = np.array([gt_box])
    expected = dense_aux_targets(priors, scores, bboxes, gts, labels, [12])
    assert expected.tolist() == [1, 1, 1] + [0] * 9
    res = POTOAuxAssigner().assign(
        *instances(priors, scores, bboxes, gts, labels),
        num_level_priors=[12])
    assert res.gt_inds.tolist() == expected.tolist()


def test_threshold_uses_unbiased_std():
    """Nine candidates of qualities [0.9, v, 0.3 x 7]: v lies between
    mean + std(N) and mean + std(N-1), so it is NOT positive."""
    lo = None
    for v in np.linspace(0.3, 0.9, 6001):
        vals = np.array([0.9, v] + [0.3] * 7)
        t0 = vals.mean() + vals.std(ddof=0)
        t1 = vals.mean() + vals.std(ddof=1)
        if t0 <= v < t1:
            lo = v if lo is None else lo
            hi = v
    assert lo is not None
    v = (lo + hi) / 2
    quals = [0.9, v] + [0.3] * 7
    gt_box = [0., 0., 100., 100.]
    priors = np.array([[10. + 10 * i, 50., 8., 8.] for i in range(9)])
    bboxes = np.array([gt_box] * 9)  # IoU 1: quality = p ** 0.2
    scores = np.array([[qv**5] for qv in quals])
    gts, labels = np.array([gt_box]), np.array([0])
    expected = dense_aux_targets(priors, scores, bboxes, gts, labels, [9])
    assert expected.tolist() == [1] + [0] * 8
    res = POTOAuxAssigner().assign(
        *instances(priors, scores, bboxes, gts, labels),
        num_level_priors=[9])
    assert res.gt_inds.tolist() == expected.tolist()


def test_topk_per_level_ties_take_first_index():
    """Every predicted box misses the GT: all qualities are 0, the
    threshold is 0 and every candidate inside the box is positive. The
    candidates are, per level, the first 9 points (ties: first index)."""
    priors = grid(((8, 8), (4, 16)))  # 64 + 16 points
    num = len(priors)
    bboxes = np.tile([[300., 300., 310., 310.]], (num, 1))
    scores = np.full((num, 1), 0.5)
    gts, labels = np.array([[0., 0., 64., 13.]]), np.array([0])
    expected = dense_aux_targets(priors, scores, bboxes, gts, labels,
                                 [64, 16])
    # level 0: points 0..8 (rows y = 4, 12, inside); level 1: points
    # 64..72, of which the first row (y = 8) is inside
    assert np.nonzero(expected)[0].tolist() == list(range(9)) + list(
        range(64, 68))
    res = POTOAuxAssigner().assign(
        *instances(priors, scores, bboxes, gts, labels),
        num_level_priors=[64, 16])
    assert res.gt_inds.tolist() == expected.tolist()


def test_conflict_goes_to_highest_quality_first_gt_on_ties():
    """Two GTs that both make point 0 positive: the higher quality wins; two
    identical GTs: the first wins everything."""
    priors = np.array([[50., 50., 8., 8.]] + [[10. + 10 * i, 90., 8., 8.]
                                              for i in range(8)])
    gt_a, gt_b = [0., 0., 100., 100.], [5., 5., 100., 100.]
    bboxes = np.array([gt_b] + [[0., 200., 10., 210.]] * 8)
    scores = np.array([[0.9, 0.9]] + [[0.5, 0.5]] * 8)
    gts, labels = np.array([gt_a, gt_b]), np.array([0, 1])
    stats = {}
    expected = dense_aux_targets(priors, scores, bboxes, gts, labels, [9],
                                 stats=stats)
    assert stats['positive'][:, 0].all()
    assert stats['quality'][1, 0] > stats['quality'][0, 0]
    assert expected[0] == 2
    pred, gt = instances(priors, scores, bboxes, gts, labels)
    res = POTOAuxAssigner().assign(pred, gt, num_level_priors=[9])
    assert res.gt_inds.tolist() == expected.tolist()
    assert res.labels[0].item() == 1
    # identical GTs with the same class: equal qualities everywhere
    gts = np.array([gt_b, gt_b])
    labels = np.array([1, 1])
    expected = dense_aux_targets(priors, scores, bboxes, gts, labels, [9])
    assert expected[0] == 1
    res = POTOAuxAssigner().assign(
        *instances(priors, scores, bboxes, gts, labels),
        num_level_priors=[9])
    assert res.gt_inds.tolist() == expected.tolist()


@pytest.mark.parametrize('seed', [5, 6])
def test_ignore_regions_take_no_part(seed):
    priors, scores, bboxes, gt_boxes, labels, levels = crowded_case(seed, 15)
    pred, gt = instances(priors, scores, bboxes, gt_boxes, labels)
    rng = np.random.default_rng(seed)
    ign = np.concatenate([gt_boxes[:5] + rng.uniform(-3, 3, size=(5, 4)),
                          [[0., 0., 96., 96.]]])
    ignore = InstanceData(bboxes=torch.tensor(ign))
    assigner = POTOAuxAssigner()
    without = assigner.assign(pred, gt, num_level_priors=levels)
    with_ign = assigner.assign(pred, gt, ignore, num_level_priors=levels)
    assert with_ign.num_gts == without.num_gts == 15
    assert with_ign.gt_inds.tolist() == without.gt_inds.tolist()
    assert with_ign.labels.tolist() == without.labels.tolist()
    assert torch.equal(with_ign.max_overlaps, without.max_overlaps)
    assert (with_ign.gt_inds >= 0).all()
    expected = dense_aux_targets(priors, scores, bboxes, gt_boxes, labels,
                                 levels)
    assert with_ign.gt_inds.tolist() == expected.tolist()


def test_empty():
    priors = grid(((4, 8), ))
    pred = InstanceData(
        priors=torch.tensor(priors), scores=torch.full((16, 1), 0.5,
                                                       dtype=torch.float64),
        bboxes=torch.tensor(priors))
    empty = InstanceData(
        bboxes=torch.zeros(0, 4, dtype=torch.float64),
        labels=torch.zeros(0, dtype=torch.long))
    ignore = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.]]))
    res = POTOAuxAssigner().assign(pred, empty, ignore,
                                   num_level_priors=[16])
    assert res.gt_inds.tolist() == [0] * 16
