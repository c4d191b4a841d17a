"""POTOAssigner (algorithms.md section 2), each rule checked against an
independent restatement written here (dense float64 numpy, plain loops,
scipy's ``linear_sum_assignment`` on the full matrix):

- quality ``p ** (1 - alpha) * IoU ** alpha``, -1 outside the prior;
- prior: strictly inside the box (radius 0), or the square
  ``|x - cx| < r * s``, ``|y - cy| < r * s`` (``s`` the point's own stride)
  intersected with the box, strict inequalities;
- Hungarian: the full-matrix optimum, every GT exactly one point;
- argmax: highest-quality claimant wins, a point claimed with -1 stays
  background, ties go to the first index;
- ignore regions take no part.
"""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from mmlla.models.task_modules.assigners import POTOAssigner

ALPHA = 0.8


# --------------------------------------------------------------------------
# independent restatement
# --------------------------------------------------------------------------
def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plain IoU (R, K) in float64, written independently of mmdet."""
    out = np.zeros((len(a), len(b)))
    for i, (ax1, ay1, ax2, ay2) in enumerate(a):
        for j, (bx1, by1, bx2, by2) in enumerate(b):
            iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
            ih = max(0.0, min(ay2, by2) - max(ay1, by1))
            inter = iw * ih
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) \
                - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def in_prior(x, y, s, box, radius):
    """Section 2's spatial prior for one point and one GT, literally."""
    x1, y1, x2, y2 = box
    inside_box = x - x1 > 0 and y - y1 > 0 and x2 - x > 0 and y2 - y > 0
    if radius <= 0:
        return inside_box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return inside_box and abs(x - cx) < radius * s and \
        abs(y - cy) < radius * s


def full_quality(priors, scores, bboxes, gt_boxes, gt_labels, alpha=ALPHA,
                 radius=0.0):
    """The dense (G, A) quality matrix of DeFCN, -1 outside the prior."""
    iou = iou_matrix(gt_boxes, bboxes)
    q = np.empty_like(iou)
    for g in range(len(gt_boxes)):
        for a in range(len(priors)):
            if in_prior(priors[a, 0], priors[a, 1], priors[a, 2],
                        gt_boxes[g], radius):
                p = scores[a, gt_labels[g]]
                q[g, a] = p**(1 - alpha) * iou[g, a]**alpha
            else:
                q[g, a] = -1.0
    return q


def argmax_restated(q):
    """Argmax variant: each GT takes its first highest-quality point; a point
    claimed by several GTs goes to the highest claim (first GT on ties); a
    point claimed only with -1 stays background. Returns gt_inds (A,)."""
    num_gts, num = q.shape
    claim_q = np.full(num, -np.inf)
    owner = np.zeros(num, dtype=np.int64)
    for g in range(num_gts):
        best = 0
        for a in range(1, num):
            if q[g, a] > q[g, best]:
                best = a
        if q[g, best] > claim_q[best]:
            claim_q[best] = q[g, best]
            owner[best] = g + 1
    owner[claim_q <= -1] = 0
    return owner


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def make_points(sizes=((8, 8), (4, 4), (2, 2)), strides=(8, 16, 32)):
    pts = []
    for (h, w), s in zip(sizes, strides):
        for row in range(h):
            for col in range(w):
                pts.append([(col + 0.5) * s, (row + 0.5) * s, s, s])
    return np.array(pts, dtype=np.float64)


def random_case(rng, num_gts, num_classes=3, priors=None, tiny_gts=0):
    priors = make_points() if priors is None else priors
    num = len(priors)
    scores = rng.uniform(0.01, 0.99, size=(num, num_classes))
    ctr = priors[:, :2] + rng.uniform(-8, 8, size=(num, 2))
    wh = rng.uniform(4, 40, size=(num, 2))
    bboxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1)
    c = rng.uniform(0, 64, size=(num_gts, 2))
    s = rng.uniform(6, 40, size=(num_gts, 2))
    gts = np.concatenate([c - s / 2, c + s / 2], axis=1)
    for i in range(min(tiny_gts, num_gts)):
        # a box between points: no point strictly inside it
        gts[i] = [9.0, 9.0, 11.0, 11.0]
    labels = rng.integers(0, num_classes, size=num_gts)
    return priors, scores, bboxes, gts, labels


def to_instances(priors, scores, bboxes, gts, labels, dtype=torch.float64):
    pred = InstanceData(
        priors=torch.tensor(priors, dtype=dtype),
        scores=torch.tensor(scores, dtype=dtype),
        bboxes=torch.tensor(bboxes, dtype=dtype))
    gt = InstanceData(
        bboxes=torch.tensor(gts, dtype=dtype),
        labels=torch.tensor(labels, dtype=torch.long))
    return pred, gt


def ignore_boxes(boxes, dtype=torch.float64):
    return InstanceData(bboxes=torch.tensor(boxes, dtype=dtype))


def total_quality(q, gt_inds):
    return sum(q[gt_inds[a] - 1, a] for a in np.nonzero(gt_inds > 0)[0])


# --------------------------------------------------------------------------
# Hungarian
# --------------------------------------------------------------------------
@pytest.mark.parametrize('seed,num_gts,radius,tiny', [
    (0, 3, 0.0, 0), (1, 10, 0.0, 2), (2, 25, 1.5, 0), (3, 6, 1.5, 3),
    (4, 40, 0.0, 5), (5, 30, 1.5, 4)
])
def test_hungarian_matches_full_scipy_optimum(seed, num_gts, radius, tiny):
    rng = np.random.default_rng(seed)
    case = random_case(rng, num_gts, tiny_gts=tiny)
    priors, scores, bboxes, gts, labels = case
    assigner = POTOAssigner(alpha=ALPHA, center_sampling_radius=radius)
    result = assigner.assign(*to_instances(*case))
    q = full_quality(priors, scores, bboxes, gts, labels, ALPHA, radius)
    rows, cols = linear_sum_assignment(q, maximize=True)
    optimum = q[rows, cols].sum()

    gt_inds = result.gt_inds.numpy()
    # every GT gets exactly one point, nothing else is positive or ignored
    for g in range(num_gts):
        assert (gt_inds == g + 1).sum() == 1
    assert (gt_inds > 0).sum() == num_gts
    assert (gt_inds >= 0).all()
    assert total_quality(q, gt_inds) == pytest.approx(optimum, abs=1e-9)
    pos = gt_inds > 0
    assert (result.labels.numpy()[pos] == labels[gt_inds[pos] - 1]).all()
    assert (result.labels.numpy()[~pos] == -1).all()
    assert result.num_gts == num_gts
    # max_overlaps: the IoU of each positive's predicted box with its GT
    iou = iou_matrix(gts, bboxes)
    for a in np.nonzero(pos)[0]:
        assert result.max_overlaps[a].item() == pytest.approx(
            iou[gt_inds[a] - 1, a], abs=1e-6)
    if tiny:
        # the GTs without any inside point still got one (outside) point
        assert (q[:tiny] == -1).all()


def test_more_gts_than_candidate_points():
    """Twelve GTs, only a handful of points inside any prior: the extra GTs
    must still get one (outside) point each, at the full optimum."""
    rng = np.random.default_rng(7)
    priors = make_points(sizes=((4, 4), ), strides=(16, ))
    _, scores, bboxes, _, _ = random_case(rng, 1, priors=priors)
    gts = np.array([[0, 0, 20, 20]] * 6 + [[40, 40, 42, 42]] * 6, float)
    labels = rng.integers(0, 3, size=12)
    result = POTOAssigner().assign(
        *to_instances(priors, scores, bboxes, gts, labels))
    q = full_quality(priors, scores, bboxes, gts, labels)
    assert (q > -1).any(axis=0).sum() < 12
    rows, cols = linear_sum_assignment(q, maximize=True)
    gt_inds = result.gt_inds.numpy()
    assert sorted(gt_inds[gt_inds > 0]) == list(range(1, 13))
    assert total_quality(q, gt_inds) == pytest.approx(
        q[rows, cols].sum(), abs=1e-9)


def test_quality_formula_exponents():
    """p ** (1 - alpha) * IoU ** alpha, not the other way round: point 0 has
    p = 0.9, IoU 0.3 (quality 0.374), point 1 has p = 0.2, IoU 0.6
    (quality 0.482); with the exponents swapped point 0 would win."""
    priors = torch.tensor([[5., 5., 8., 8.], [6., 5., 8., 8.]])
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([0]))
    # IoU([0,0,10,3], gt) = 0.3; IoU([0,0,10,6], gt) = 0.6
    bboxes = torch.tensor([[0., 0., 10., 3.], [0., 0., 10., 6.]])
    scores = torch.tensor([[0.9], [0.2]])
    q = full_quality(priors.numpy(), scores.numpy(), bboxes.numpy(),
                     gt.bboxes.numpy(), [0])
    assert q[0, 1] > q[0, 0]
    swapped = [0.9**0.8 * 0.3**0.2, 0.2**0.8 * 0.6**0.2]
    assert swapped[0] > swapped[1]
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    for match in ('hungarian', 'argmax'):
        res = POTOAssigner(match=match).assign(pred, gt)
        assert res.gt_inds.tolist() == [0, 1]
        assert res.max_overlaps[1].item() == pytest.approx(0.6)


# --------------------------------------------------------------------------
# the spatial prior, one point at a time
# --------------------------------------------------------------------------
def prior_cases():
    """(x, y, stride, box, radius) with points exactly on the box edges and
    on the centre square's edges, for the point's own stride."""
    box = [0., 0., 100., 60.]  # centre (50, 30)
    cases = []
    for stride in (8., 16., 32.):
        for x in (0., 0.5, 26., 38., 50., 61.5, 62., 62.5, 74., 99.5, 100.,
                  101.):
            for y in (0., 6., 18., 18.5, 30., 41.5, 42., 54., 59.5, 60.):
                for radius in (0.0, 1.5):
                    cases.append((x, y, stride, box, radius))
    # a thin box: the square is wider than the box, the box edge decides
    thin = [40., 0., 60., 200.]
    for x in (40., 40.5, 59.5, 60.):
        for y in (76., 76.5, 123.5, 124.):
            cases.append((x, y, 16., thin, 1.5))
    return cases


def test_prior_membership_against_restatement():
    """A single point and a single GT, argmax: the point is positive iff it
    is inside the prior (quality >= 0 > -1). Covers points exactly on the
    box edges (outside), exactly on the square's edges (outside: 1.5 x 8 =
    12 around (50, 30) puts x = 62 and y = 18, 42 on the edge), and the
    same position inside for a coarser stride (the point's own stride)."""
    expected_in = 0
    by_stride = {}
    for x, y, s, box, radius in prior_cases():
        pred = InstanceData(
            priors=torch.tensor([[x, y, s, s]]),
            scores=torch.tensor([[0.5]]),
            bboxes=torch.tensor([[x - 4, y - 4, x + 4, y + 4]]))
        gt = InstanceData(
            bboxes=torch.tensor([box]), labels=torch.tensor([0]))
        res = POTOAssigner(center_sampling_radius=radius,
                           match='argmax').assign(pred, gt)
        inside = in_prior(x, y, s, box, radius)
        expected_in += inside
        assert res.gt_inds.tolist() == [int(inside)], (x, y, s, box, radius)
        if radius > 0 and box[0] == 0.:
            by_stride.setdefault((x, y), {})[s] = inside
    assert 0 < expected_in < len(prior_cases())
    # the stride matters: x = 62 is outside for stride 8, inside for 16
    assert by_stride[(62., 30.)] == {8.: False, 16.: True, 32.: True}
    # x = 74 is on the stride-16 square's edge (1.5 x 16 = 24)
    assert by_stride[(74., 30.)] == {8.: False, 16.: False, 32.: True}
    assert by_stride[(50., 18.)] == {8.: False, 16.: True, 32.: True}


def test_prior_per_level_stride_in_one_call():
    """Points of three levels at the same place: each uses its own stride
    (1.5 x 8 = 12, 1.5 x 16 = 24, 1.5 x 32 = 48 around the centre (50, 50)
    of the GT [0, 0, 100, 100]). The point of the level whose square
    excludes it would have a perfect box; Hungarian must not take it."""
    priors = torch.tensor([[70., 50., 8., 8.], [70., 50., 16., 16.],
                           [74., 50., 16., 16.], [75., 50., 32., 32.]])
    gt_box = [0., 0., 100., 100.]
    bboxes = torch.tensor([gt_box, [10., 10., 90., 90.], [0., 0., 100., 101.],
                           [20., 20., 80., 80.]])
    scores = torch.tensor([[0.99], [0.5], [0.99], [0.4]])
    gt = InstanceData(bboxes=torch.tensor([gt_box]), labels=torch.tensor([0]))
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    q = full_quality(priors.numpy(), scores.numpy(), bboxes.numpy(),
                     np.array([gt_box]), [0], radius=1.5)
    # point 0 (stride 8, |dx| = 20 >= 12) and point 2 (stride 16, |dx| = 24,
    # on the edge) are outside; points 1 (stride 16) and 3 (stride 32) are in
    assert q[0, 0] == -1 and q[0, 2] == -1
    assert q[0, 1] > 0 and q[0, 3] > 0
    best = int(np.argmax(q[0]))
    res = POTOAssigner(center_sampling_radius=1.5).assign(pred, gt)
    assert res.gt_inds.tolist() == [int(a == best) for a in range(4)]
    res = POTOAssigner(center_sampling_radius=1.5,
                       match='argmax').assign(pred, gt)
    assert res.gt_inds.tolist() == [int(a == best) for a in range(4)]


# --------------------------------------------------------------------------
# argmax
# --------------------------------------------------------------------------
@pytest.mark.parametrize('seed,num_gts,radius,tiny', [
    (10, 5, 0.0, 0), (11, 20, 0.0, 2), (12, 30, 1.5, 3), (13, 12, 1.5, 0)
])
def test_argmax_matches_restatement(seed, num_gts, radius, tiny):
    rng = np.random.default_rng(seed)
    case = random_case(rng, num_gts, tiny_gts=tiny)
    priors, scores, bboxes, gts, labels = case
    res = POTOAssigner(center_sampling_radius=radius,
                       match='argmax').assign(*to_instances(*case))
    q = full_quality(priors, scores, bboxes, gts, labels, radius=radius)
    expected = argmax_restated(q)
    assert res.gt_inds.numpy().tolist() == expected.tolist()
    # the case exercises conflicts: fewer positives than GTs with a point
    wanting = (q.max(axis=1) > -1).sum()
    if seed in (11, 12):
        assert (expected > 0).sum() < wanting


def tiny_case():
    """Three points on a line, two GTs."""
    priors = torch.tensor([[4., 4., 8., 8.], [12., 4., 8., 8.],
                           [20., 4., 8., 8.]])
    bboxes = torch.tensor([[0., 0., 8., 8.], [8., 0., 16., 8.],
                           [16., 0., 24., 8.]])
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 16., 8.], [8., 0., 24., 8.]]),
        labels=torch.tensor([0, 0]))
    return priors, bboxes, gt


def test_argmax_conflict_goes_to_highest_quality():
    priors, bboxes, gt = tiny_case()
    # alpha = 0: quality = probability of the GT's class. Point 1 (x = 12)
    # is inside both GTs and is the best point of both; GT 1 (class 1) has
    # the higher probability there and wins; GT 0 gets nothing (argmax is
    # not one-to-one per GT).
    gt.labels = torch.tensor([0, 1])
    scores = torch.tensor([[0.5, 0.1], [0.8, 0.9], [0.1, 0.7]])
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    res = POTOAssigner(alpha=0.0, match='argmax').assign(pred, gt)
    assert res.gt_inds.tolist() == [0, 2, 0]
    assert res.labels.tolist() == [-1, 1, -1]
    # the other way round: GT 0 has the higher claim
    scores = torch.tensor([[0.5, 0.1], [0.95, 0.9], [0.1, 0.7]])
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    res = POTOAssigner(alpha=0.0, match='argmax').assign(pred, gt)
    assert res.gt_inds.tolist() == [0, 1, 0]


def test_argmax_ties_take_first_index():
    priors, bboxes, gt = tiny_case()
    # both GTs claim point 1 with 0.9: the tie goes to the first GT
    scores = torch.tensor([[0.5], [0.9], [0.7]])
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    res = POTOAssigner(alpha=0.0, match='argmax').assign(pred, gt)
    assert res.gt_inds.tolist() == [0, 1, 0]
    # a GT whose two inside points have the same quality takes the first
    scores = torch.tensor([[0.6], [0.6], [0.7]])
    gt0 = gt[:1]
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    res = POTOAssigner(alpha=0.0, match='argmax').assign(pred, gt0)
    assert res.gt_inds.tolist() == [1, 0, 0]


def test_argmax_outside_point_stays_background():
    priors, bboxes, _ = tiny_case()
    gt = InstanceData(
        bboxes=torch.tensor([[40., 40., 50., 50.]]), labels=torch.tensor([0]))
    pred = InstanceData(
        priors=priors, scores=torch.full((3, 1), 0.5), bboxes=bboxes)
    res = POTOAssigner(match='argmax').assign(pred, gt)
    assert res.gt_inds.tolist() == [0, 0, 0]
    # Hungarian still gives the GT one point
    res = POTOAssigner().assign(pred, gt)
    assert (res.gt_inds == 1).sum() == 1
    # next to a GT that has points inside: the outside GT's argmax is the
    # first point (quality -1), which nobody else claims: background
    gt = InstanceData(
        bboxes=torch.tensor([[40., 40., 50., 50.], [0., 0., 16., 8.]]),
        labels=torch.tensor([0, 0]))
    pred = InstanceData(
        priors=priors, scores=torch.tensor([[0.2], [0.9], [0.5]]),
        bboxes=bboxes)
    q = full_quality(priors.numpy(), pred.scores.numpy(), bboxes.numpy(),
                     gt.bboxes.numpy(), [0, 0])
    assert q[0].tolist() == [-1, -1, -1] and q[1, 1] > q[1, 0] > -1
    assert argmax_restated(q).tolist() == [0, 2, 0]
    res = POTOAssigner(match='argmax').assign(pred, gt)
    assert res.gt_inds.tolist() == [0, 2, 0]


def test_argmax_gt_without_inside_point_cannot_steal():
    """GT 0 (listed first) has no point inside: its row is all -1 and its
    argmax is point 0. GT 1 has points 0 and 1 inside, both of quality 0
    (its predicted boxes miss the GT), so it takes the first, point 0. Point
    0 must go to GT 1: a -1 claim never beats a real one, whatever the GT
    order (with "first GT wins" GT 0 would steal it)."""
    priors = torch.tensor([[4., 4., 8., 8.], [12., 4., 8., 8.],
                           [60., 60., 8., 8.]])
    bboxes = torch.tensor([[100., 100., 110., 110.], [100., 100., 110., 110.],
                           [0., 0., 2., 2.]])
    scores = torch.full((3, 1), 0.5)
    gt = InstanceData(
        bboxes=torch.tensor([[30., 30., 31., 31.], [0., 0., 16., 8.]]),
        labels=torch.tensor([0, 0]))
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    q = full_quality(priors.numpy(), scores.numpy(), bboxes.numpy(),
                     gt.bboxes.numpy(), [0, 0])
    assert q[0].tolist() == [-1, -1, -1]
    assert q[1].tolist() == [0, 0, -1]
    expected = argmax_restated(q)
    assert expected.tolist() == [2, 0, 0]
    res = POTOAssigner(match='argmax').assign(pred, gt)
    assert res.gt_inds.tolist() == [2, 0, 0]
    assert res.labels.tolist() == [0, -1, -1]
    # the same with the GTs swapped
    gt2 = InstanceData(bboxes=gt.bboxes.flip(0), labels=gt.labels)
    res = POTOAssigner(match='argmax').assign(pred, gt2)
    assert res.gt_inds.tolist() == [1, 0, 0]


# --------------------------------------------------------------------------
# ignore regions take no part
# --------------------------------------------------------------------------
def assert_same_result(a, b):
    assert a.num_gts == b.num_gts
    assert a.gt_inds.tolist() == b.gt_inds.tolist()
    assert a.labels.tolist() == b.labels.tolist()
    assert torch.equal(a.max_overlaps, b.max_overlaps)


@pytest.mark.parametrize('match', ['hungarian', 'argmax'])
@pytest.mark.parametrize('radius', [0.0, 1.5])
@pytest.mark.parametrize('seed', [20, 21])
def test_ignore_regions_take_no_part(seed, radius, match):
    rng = np.random.default_rng(seed)
    case = random_case(rng, 12, tiny_gts=1)
    pred, gt = to_instances(*case)
    # ignore boxes covering GTs (and their points) and some free space
    ign = np.concatenate([case[3][:4] + rng.uniform(-3, 3, size=(4, 4)),
                          [[0., 0., 64., 64.], [30., 30., 50., 50.]]])
    assigner = POTOAssigner(center_sampling_radius=radius, match=match)
    without = assigner.assign(pred, gt)
    with_ign = assigner.assign(pred, gt, ignore_boxes(ign))
    assert_same_result(without, with_ign)
    assert (with_ign.gt_inds >= 0).all()
    # and against the restatement, which knows nothing of ignore regions
    q = full_quality(*case, radius=radius)
    if match == 'argmax':
        assert with_ign.gt_inds.numpy().tolist() == \
            argmax_restated(q).tolist()
    else:
        rows, cols = linear_sum_assignment(q, maximize=True)
        assert total_quality(q, with_ign.gt_inds.numpy()) == pytest.approx(
            q[rows, cols].sum(), abs=1e-9)


def test_ignore_region_covering_gt_points():
    priors, bboxes, gt = tiny_case()
    gt = gt[:1]  # GT 0 = [0, 0, 16, 8] covers points 0, 1
    scores = torch.tensor([[0.9], [0.1], [0.8]])
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    # an ignore region on the GT's best point, a better-scoring ignore region
    # over every point, and one over the free point 2
    ignore = InstanceData(bboxes=torch.tensor([[0., 0., 8., 8.],
                                               [-10., -10., 30., 20.],
                                               [16., 0., 24., 8.]]))
    for match in ('hungarian', 'argmax'):
        assigner = POTOAssigner(alpha=0.0, match=match)
        res = assigner.assign(pred, gt, ignore)
        assert res.gt_inds.tolist() == [1, 0, 0]
        assert res.labels.tolist() == [0, -1, -1]
        assert res.num_gts == 1
        # max_overlaps: IoU of point 0's box [0,0,8,8] with GT [0,0,16,8]
        assert res.max_overlaps[0].item() == pytest.approx(0.5)
        assert_same_result(res, assigner.assign(pred, gt))
    # no GT, only ignore regions: everything is background, nothing ignored
    empty = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    res = POTOAssigner().assign(pred, empty, ignore)
    assert res.gt_inds.tolist() == [0, 0, 0]


def test_centre_prior_radius():
    # big GT, radius 0.5 stride (=4 px) around the centre (12, 4): only the
    # point at x=12 is inside the centre region
    priors, bboxes, _ = tiny_case()
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 24., 8.]]), labels=torch.tensor([0]))
    scores = torch.tensor([[0.9], [0.1], [0.9]])
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    res = POTOAssigner(alpha=0.0, center_sampling_radius=0.5,
                       match='argmax').assign(pred, gt)
    assert res.gt_inds.tolist() == [0, 1, 0]


def test_empty_and_errors():
    priors, bboxes, gt = tiny_case()
    pred = InstanceData(
        priors=priors, scores=torch.full((3, 1), 0.5), bboxes=bboxes)
    empty = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    res = POTOAssigner().assign(pred, empty)
    assert res.gt_inds.tolist() == [0, 0, 0]
    bad = pred.clone()
    bad.scores = torch.tensor([[0.5], [float('nan')], [0.5]])
    with pytest.raises(ValueError, match='non-finite'):
        POTOAssigner().assign(bad, gt)
    bad = pred.clone()
    bad.bboxes = bboxes.clone()
    bad.bboxes[0, 0] = float('inf')
    with pytest.raises(ValueError, match='non-finite'):
        POTOAssigner().assign(bad, gt)
    with pytest.raises(ValueError):
        POTOAssigner(match='greedy')
