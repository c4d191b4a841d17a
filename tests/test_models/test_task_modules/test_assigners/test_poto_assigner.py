"""POTOAssigner: Hungarian optimum against scipy on the full matrix, argmax
semantics, ignore regions, errors."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from mmlla.models.task_modules.assigners import POTOAssigner


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plain IoU (R, K) written independently of mmdet."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-6)


def full_quality(priors, scores, bboxes, gt_boxes, gt_labels, alpha,
                 radius=0.0):
    """The dense (R, A) quality matrix of DeFCN, -1 outside the prior."""
    p = scores[:, gt_labels].T
    q = p**(1 - alpha) * iou_matrix(gt_boxes, bboxes)**alpha
    x, y, s = priors[:, 0], priors[:, 1], priors[:, 2]
    boxes = np.repeat(gt_boxes[:, None, :], len(priors), axis=1)
    if radius > 0:
        cx = (gt_boxes[:, 0] + gt_boxes[:, 2]) / 2
        cy = (gt_boxes[:, 1] + gt_boxes[:, 3]) / 2
        r = s[None] * radius
        boxes = np.stack([
            np.maximum(cx[:, None] - r, gt_boxes[:, 0:1]),
            np.maximum(cy[:, None] - r, gt_boxes[:, 1:2]),
            np.minimum(cx[:, None] + r, gt_boxes[:, 2:3]),
            np.minimum(cy[:, None] + r, gt_boxes[:, 3:4])
        ], axis=-1)
    inside = np.minimum.reduce([
        x[None] - boxes[..., 0], y[None] - boxes[..., 1],
        boxes[..., 2] - x[None], boxes[..., 3] - y[None]
    ]) > 0
    q[~inside] = -1
    return q


def make_points(sizes=((8, 8), (4, 4), (2, 2)), strides=(8, 16, 32)):
    pts = []
    for (h, w), s in zip(sizes, strides):
        ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
        pts.append(
            np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s,
                      np.full(h * w, s), np.full(h * w, s)], axis=1))
    return np.concatenate(pts).astype(np.float64)


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


def to_instances(priors, scores, bboxes, gts, labels):
    pred = InstanceData(
        priors=torch.tensor(priors, dtype=torch.float32),
        scores=torch.tensor(scores, dtype=torch.float32),
        bboxes=torch.tensor(bboxes, dtype=torch.float32))
    gt = InstanceData(
        bboxes=torch.tensor(gts, dtype=torch.float32),
        labels=torch.tensor(labels, dtype=torch.long))
    return pred, gt


@pytest.mark.parametrize('seed,num_gts,radius,tiny', [
    (0, 3, 0.0, 0), (1, 10, 0.0, 2), (2, 25, 1.5, 0), (3, 6, 1.5, 3),
    (4, 40, 0.0, 5)
])
def test_hungarian_matches_full_scipy_optimum(seed, num_gts, radius, tiny):
    rng = np.random.default_rng(seed)
    priors, scores, bboxes, gts, labels = random_case(
        rng, num_gts, tiny_gts=tiny)
    assigner = POTOAssigner(alpha=0.8, center_sampling_radius=radius)
    result = assigner.assign(*to_instances(priors, scores, bboxes, gts,
                                           labels))
    q = full_quality(priors, scores, bboxes, gts, labels, 0.8, radius)
    rows, cols = linear_sum_assignment(q, maximize=True)
    optimum = q[rows, cols].sum()

    gt_inds = result.gt_inds.numpy()
    # every GT gets exactly one point
    for g in range(num_gts):
        assert (gt_inds == g + 1).sum() == 1
    assert (gt_inds > 0).sum() == num_gts
    ours = sum(q[gt_inds[a] - 1, a] for a in np.nonzero(gt_inds > 0)[0])
    assert ours == pytest.approx(optimum, abs=1e-4)
    pos = gt_inds > 0
    assert (result.labels.numpy()[pos] == labels[gt_inds[pos] - 1]).all()
    assert (result.labels.numpy()[~pos] == -1).all()
    assert result.num_gts == num_gts


def test_more_gts_than_candidate_points():
    """Twelve GTs, only a handful of points inside any prior: the extra GTs
    must still get one (outside) point each, at the full optimum."""
    rng = np.random.default_rng(7)
    priors = make_points(sizes=((4, 4), ), strides=(16, ))
    _, scores, bboxes, _, _ = random_case(rng, 1, priors=priors)
    gts = np.array([[0, 0, 20, 20]] * 6 + [[40, 40, 42, 42]] * 6, float)
    labels = rng.integers(0, 3, size=12)
    result = POTOAssigner().assign(*to_instances(priors, scores, bboxes, gts,
                                                 labels))
    q = full_quality(priors, scores, bboxes, gts, labels, 0.8)
    assert (q > -1).any(axis=0).sum() < 12
    rows, cols = linear_sum_assignment(q, maximize=True)
    gt_inds = result.gt_inds.numpy()
    assert sorted(gt_inds[gt_inds > 0]) == list(range(1, 13))
    ours = sum(q[gt_inds[a] - 1, a] for a in np.nonzero(gt_inds > 0)[0])
    assert ours == pytest.approx(q[rows, cols].sum(), abs=1e-5)


def tiny_case():
    """Three points on a line, two GTs, hand-computable qualities."""
    priors = torch.tensor([[4., 4., 8., 8.], [12., 4., 8., 8.],
                           [20., 4., 8., 8.]])
    bboxes = torch.tensor([[0., 0., 8., 8.], [8., 0., 16., 8.],
                           [16., 0., 24., 8.]])
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 16., 8.], [8., 0., 24., 8.]]),
        labels=torch.tensor([0, 0]))
    return priors, bboxes, gt


def test_argmax_hand_computed():
    priors, bboxes, gt = tiny_case()
    # alpha = 0: quality is the probability. Point 1 is the best for both
    # GTs (0.9); GT 1 is... point 1 inside both GT boxes (x=12).
    scores = torch.tensor([[0.5], [0.9], [0.7]])
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    res = POTOAssigner(alpha=0.0, match='argmax').assign(pred, gt)
    # both GTs claim point 1 with 0.9: the tie goes to one of them, the other
    # GT gets nothing (argmax is not one-to-one per GT)
    assert res.gt_inds[1] in (1, 2)
    assert (res.gt_inds > 0).sum() == 1
    # break the tie with IoU: alpha = 1 -> quality is the IoU.
    # IoU(point box 1, GT0) = 64/128 = 0.5, with GT1 = 0.5; point 0 with
    # GT0 = 0.5, point 2 with GT1 = 0.5 -> make point 2 fit GT1 exactly.
    bboxes2 = bboxes.clone()
    bboxes2[2] = torch.tensor([8., 0., 24., 8.])
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes2)
    res = POTOAssigner(alpha=1.0, match='argmax').assign(pred, gt)
    # GT1 takes point 2 (IoU 1); GT0: IoU with p0 0.5, p1 0.5, p2 (inside?
    # x=20 is outside GT0) -> -1; first max is point 0
    assert res.gt_inds.tolist() == [1, 0, 2]


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


def test_ignore_regions_compete_and_are_marked():
    priors, bboxes, gt = tiny_case()
    gt = gt[:1]  # GT 0 = [0, 0, 16, 8] covers points 0, 1
    ignore = InstanceData(bboxes=torch.tensor([[16., 0., 24., 8.]]))
    scores = torch.tensor([[0.9], [0.1], [0.8]])
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    res = POTOAssigner(alpha=0.0).assign(pred, gt, ignore)
    assert res.gt_inds.tolist() == [1, 0, -1]
    assert res.labels.tolist() == [0, -1, -1]
    assert res.num_gts == 1
    # max_overlaps: IoU of point 0's box [0,0,8,8] with GT [0,0,16,8]
    assert res.max_overlaps[0].item() == pytest.approx(0.5)


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
