"""The sparse paths of POTOAssigner, ForegroundLossAssigner and
LossAwareAssigner against their dense references (``sparse=False``, the
pre-sparse implementation) and against independent full-matrix solutions:

- the in-prior pairs from grid indices equal the dense mask's nonzeros;
- ``best_per_row`` equals ``topk_first`` on the dense matrix;
- ``sparse_matching`` (each row keeps its R best points) reaches the
  full-matrix optimum of scipy's ``linear_sum_assignment``, ties included;
- the fill rule for rows without an in-prior point;
- identical ``gt_inds`` / ``labels`` / ``max_overlaps`` on random crowds:
  many G, tiny images, boxes partly or wholly outside the image, tiny boxes
  (fewer than K in-box points), G > A, empty GT, ignore regions, saturated
  scores, logits, anchors.

The sparse paths switch to the dense ones below a problem size: the tests
lower those thresholds to 0 so that tiny inputs run the sparse code.
"""
import numpy as np
import pytest
import torch
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from mmlla.models.task_modules.assigners import (ForegroundLossAssigner,
                                                 LossAwareAssigner,
                                                 POTOAssigner)
from mmlla.models.task_modules.assigners import loss_aware_assigner as lla
from mmlla.models.task_modules.assigners import sparse_utils
from mmlla.models.task_modules.assigners.sparse_utils import (
    best_per_row, fill_unmatched, grid_levels, prior_pairs, sparse_matching)
from mmlla.models.task_modules.assigners.utils import (inside_prior,
                                                       topk_first)

STRIDES = (8, 16, 32, 64, 128)
# read at import, before the fixture below forces the sparse paths
DEFAULT_LIMITS = {
    'lla': (lla.SPARSE_MIN_PAIRS, lla.SPARSE_MIN_PAIRS_CUDA),
    'matching': (sparse_utils.SPARSE_MIN_PAIRS,
                 sparse_utils.SPARSE_MIN_PAIRS_CUDA)
}


@pytest.fixture(autouse=True)
def always_sparse(monkeypatch):
    for module in (sparse_utils, lla):
        monkeypatch.setattr(module, 'SPARSE_MIN_PAIRS', 0)
        monkeypatch.setattr(module, 'SPARSE_MIN_PAIRS_CUDA', 0)


def make_priors(h, w, offset=0.5):
    """FPN points with strides of an h x w input (padded to 32)."""
    sizes, ph, pw = [], -(-h // 32) * 32, -(-w // 32) * 32
    for s in STRIDES:
        sizes.append((max(1, -(-ph // s)), max(1, -(-pw // s))))
    gen = MlvlPointGenerator(STRIDES, offset=offset)
    return torch.cat(gen.grid_priors(sizes, device='cpu', with_stride=True))


def make_case(seed, num_gts, h=96, w=128, num_classes=1, spill=0.3,
              tiny=0.2, offset=0.5):
    """Crowded random boxes (some partly or wholly off the image, some
    smaller than a stride), predictions jittered around points."""
    gen = torch.Generator().manual_seed(seed)
    priors = make_priors(h, w, offset)
    num = len(priors)
    cx = (torch.rand(num_gts, generator=gen) * (1 + 2 * spill) - spill) * w
    cy = (torch.rand(num_gts, generator=gen) * (1 + 2 * spill) - spill) * h
    bh = 8 + torch.rand(num_gts, generator=gen) * 0.8 * h
    bw = bh * (0.3 + 0.3 * torch.rand(num_gts, generator=gen))
    small = torch.rand(num_gts, generator=gen) < tiny
    bh = torch.where(small, torch.rand(num_gts, generator=gen) * 6 + 0.5, bh)
    bw = torch.where(small, torch.rand(num_gts, generator=gen) * 6 + 0.5, bw)
    gt_boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2,
                            cy + bh / 2], dim=1)
    dist = torch.rand(num, 4, generator=gen) * priors[:, 2:3] * 4
    xy = priors[:, :2]
    bboxes = torch.cat([xy - dist[:, :2], xy + dist[:, 2:]], dim=1)
    scores = 0.001 + 0.998 * torch.rand(num, num_classes, generator=gen)
    labels = torch.randint(num_classes, (num_gts, ), generator=gen)
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    gt = InstanceData(bboxes=gt_boxes, labels=labels)
    return pred, gt


def assert_same(a, b):
    assert torch.equal(a.gt_inds, b.gt_inds)
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.max_overlaps, b.max_overlaps)


# --------------------------------------------------------------------------
# the sparse building blocks
# --------------------------------------------------------------------------
@pytest.mark.parametrize('radius,margin', [(0.0, 0.0), (0.0, 0.01),
                                           (1.5, 0.0)])
@pytest.mark.parametrize('seed', range(4))
def test_prior_pairs_equal_dense_mask(seed, radius, margin):
    pred, gt = make_case(seed, num_gts=5 + 20 * seed, spill=0.5)
    rows, points = prior_pairs(pred.priors, gt.bboxes, radius, margin)
    want = inside_prior(pred.priors, gt.bboxes, radius,
                        margin).nonzero(as_tuple=True)
    assert torch.equal(rows, want[0]) and torch.equal(points, want[1])
    assert len(rows) > 0


def test_grid_levels_layout_and_fallbacks():
    priors = make_priors(64, 96)
    levels = grid_levels(priors[:, :2], priors[:, 2:4])
    assert [(lv.width, lv.height) for lv in levels] == [(12, 8), (6, 4),
                                                        (3, 2), (2, 1),
                                                        (1, 1)]
    assert levels[0].x0 == 4.0 and levels[0].step_x == 8.0
    assert levels[1].start == 96
    # shuffled points are no grid: the dense mask answers, same pairs
    perm = torch.randperm(len(priors), generator=torch.Generator().
                          manual_seed(0))
    assert grid_levels(priors[perm, :2], priors[perm, 2:4]) is None
    boxes = torch.tensor([[3.0, 5.0, 60.0, 50.0], [40.0, 0.0, 90.0, 70.0]])
    rows, points = prior_pairs(priors[perm], boxes)
    want = inside_prior(priors[perm], boxes).nonzero(as_tuple=True)
    assert torch.equal(rows, want[0]) and torch.equal(points, want[1])
    # several anchors per location: more runs than levels allowed
    many = priors.repeat_interleave(2, dim=0)
    many[1::2, 2:] *= 2
    assert grid_levels(many[:, :2], many[:, 2:4]) is None


@pytest.mark.parametrize('largest', [True, False])
def test_best_per_row_equals_topk_first(largest):
    gen = torch.Generator().manual_seed(3)
    counts = torch.tensor([1, 7, 0, 30, 5, 300, 12])
    rows = torch.repeat_interleave(torch.arange(len(counts)), counts)
    # few distinct values: many ties, which go to the lower point
    values = torch.randint(0, 4, (len(rows), ), generator=gen).float()
    k = 5
    keep = best_per_row(rows, values, len(counts), k, largest)
    want, start = [], 0
    for c in counts.tolist():
        if c <= k:
            want.extend(range(start, start + c))
        else:
            best = topk_first(values[None, start:start + c], k, largest)
            want.extend((start + best[0]).tolist())
        start += c
    assert keep.tolist() == want
    assert best_per_row(rows, values, len(counts), 300, largest) is None


@pytest.mark.parametrize('seed', range(12))
def test_sparse_matching_reaches_full_optimum(seed):
    rng = np.random.default_rng(seed)
    num_rows, num_cols = rng.integers(1, 9), rng.integers(1, 12)
    listed = rng.random((num_rows, num_cols)) < 0.5
    # integer qualities: exact sums, many equal-cost optima
    quality = rng.integers(0, 3, (num_rows, num_cols)).astype(float)
    full = np.where(listed, quality, -1.0)
    r, c = linear_sum_assignment(full, maximize=True)
    best = full[r, c].sum()
    rows, cols = np.nonzero(listed)
    got_r, got_c = sparse_matching(
        torch.as_tensor(rows), torch.as_tensor(cols),
        torch.as_tensor(quality[rows, cols]), num_rows, -1.0, maximize=True)
    got_r, got_c = fill_unmatched(got_r, got_c, num_rows, num_cols)
    assert len(got_r) == min(num_rows, num_cols)
    assert len(set(got_c.tolist())) == len(got_c)
    assert full[got_r.numpy(), got_c.numpy()].sum() == best
    # minimising a cost with a large outside value, the same way
    cost = np.where(listed, 5.0 - quality, 1e8)
    r, c = linear_sum_assignment(cost)
    got_r, got_c = sparse_matching(
        torch.as_tensor(rows), torch.as_tensor(cols),
        torch.as_tensor(cost[rows, cols]), num_rows, 1e8, maximize=False)
    got_r, got_c = fill_unmatched(got_r, got_c, num_rows, num_cols)
    assert cost[got_r.numpy(), got_c.numpy()].sum() == cost[r, c].sum()


def test_fill_unmatched_rule():
    rows, points = fill_unmatched(torch.tensor([1, 3]), torch.tensor([0, 2]),
                                  num_rows=5, num_points=6)
    assert rows.tolist() == [1, 3, 0, 2, 4]
    assert points.tolist() == [0, 2, 1, 3, 4]
    # more rows than points: the first waiting rows get the free points
    rows, points = fill_unmatched(torch.tensor([2]), torch.tensor([1]),
                                  num_rows=5, num_points=3)
    assert rows.tolist() == [2, 0, 1] and points.tolist() == [1, 0, 2]


# --------------------------------------------------------------------------
# POTO and the foreground-loss baseline
# --------------------------------------------------------------------------
def full_matrix_optimum(pred, gt, radius, alpha=0.8):
    """scipy on the whole (G, A) quality matrix, -1 outside the prior."""
    from mmdet.structures.bbox import bbox_overlaps
    inside = inside_prior(pred.priors, gt.bboxes, radius)
    prob = pred.scores[:, gt.labels].t().double()
    iou = bbox_overlaps(gt.bboxes, pred.bboxes).double()
    quality = torch.where(inside, prob**(1 - alpha) * iou**alpha,
                          torch.full_like(prob, -1.0)).numpy()
    r, c = linear_sum_assignment(quality, maximize=True)
    return quality, quality[r, c].sum()


@pytest.mark.parametrize('radius', [0.0, 1.5])
@pytest.mark.parametrize('num_gts,h,w', [(1, 64, 64), (7, 64, 96),
                                         (40, 96, 128), (90, 64, 64),
                                         (300, 32, 32)])
def test_poto_sparse_equals_dense(num_gts, h, w, radius):
    pred, gt = make_case(num_gts + h, num_gts, h, w, num_classes=3)
    results = {}
    for match in ('hungarian', 'argmax'):
        fast = POTOAssigner(center_sampling_radius=radius, match=match)
        ref = POTOAssigner(center_sampling_radius=radius, match=match,
                           sparse=False)
        results[match] = fast.assign(pred, gt)
        assert_same(results[match], ref.assign(pred, gt))
    # the Hungarian optimum is the full matrix's (G > A included), every GT
    # (or every point) matched
    quality, best = full_matrix_optimum(pred, gt, radius)
    gt_inds = results['hungarian'].gt_inds
    points = (gt_inds > 0).nonzero(as_tuple=True)[0]
    assert len(points) == min(num_gts, len(pred.priors))
    total = quality[(gt_inds[points] - 1).numpy(), points.numpy()].sum()
    assert total == pytest.approx(best, rel=1e-9, abs=1e-9)


def test_poto_ties_and_rows_outside_every_prior():
    """Zero-area predictions: quality 0 at every in-prior pair (all ties);
    boxes off the image have no in-prior point: the optimum is the full
    matrix's and those GTs take the lowest free points in GT order."""
    pred, gt = make_case(5, 30, 64, 96)
    pred.bboxes = pred.priors[:, :2].repeat(1, 2)
    off = torch.tensor([[-50.0, -50.0, -20.0, -10.0],
                        [500.0, 5.0, 520.0, 40.0]])
    gt = InstanceData(bboxes=torch.cat([off, gt.bboxes]),
                      labels=torch.zeros(32, dtype=torch.long))
    got = POTOAssigner().assign(pred, gt)
    ref = POTOAssigner(sparse=False).assign(pred, gt)
    quality, best = full_matrix_optimum(pred, gt, 0.0)
    for res in (got, ref):
        points = (res.gt_inds > 0).nonzero(as_tuple=True)[0]
        rows = (res.gt_inds[points] - 1).numpy()
        assert quality[rows, points.numpy()].sum() == pytest.approx(best)
    # the off-image GTs 0 and 1 take the two lowest points no other GT has
    others = set(((got.gt_inds > 2).nonzero(as_tuple=True)[0]).tolist())
    free = [a for a in range(len(pred.priors)) if a not in others][:2]
    assert [int(got.gt_inds[a]) for a in free] == [1, 2]
    assert torch.equal(got.gt_inds[got.gt_inds <= 2],
                       ref.gt_inds[ref.gt_inds <= 2])


def test_poto_empty_gt_and_grid_free_priors():
    pred, gt = make_case(0, 12)
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    assert not POTOAssigner().assign(pred, empty).gt_inds.any()
    perm = torch.randperm(len(pred.priors),
                          generator=torch.Generator().manual_seed(1))
    shuffled = InstanceData(priors=pred.priors[perm],
                            scores=pred.scores[perm],
                            bboxes=pred.bboxes[perm])
    # no grid: the pairs come from the dense mask, the rest is unchanged
    assert_same(POTOAssigner().assign(shuffled, gt),
                POTOAssigner(sparse=False).assign(shuffled, gt))


@pytest.mark.parametrize('score_type', ['probs', 'logits'])
@pytest.mark.parametrize('num_gts', [3, 25, 120])
def test_foreground_loss_sparse_equals_dense(num_gts, score_type):
    pred, gt = make_case(num_gts, num_gts, 64, 96, num_classes=4)
    if score_type == 'logits':
        pred.scores = torch.logit(pred.scores)
    for radius in (0.0, 1.5):
        kwargs = dict(center_sampling_radius=radius, score_type=score_type)
        assert_same(
            ForegroundLossAssigner(**kwargs).assign(pred, gt),
            ForegroundLossAssigner(sparse=False, **kwargs).assign(pred, gt))


# --------------------------------------------------------------------------
# LLA
# --------------------------------------------------------------------------
def lla_pair(pred, gt, ignore=None, **kwargs):
    fast = LossAwareAssigner(**kwargs).assign(pred, gt, ignore)
    ref = LossAwareAssigner(sparse=False, **kwargs).assign(pred, gt, ignore)
    assert_same(fast, ref)
    return fast


@pytest.mark.parametrize('num_gts,h,w', [(1, 64, 64), (12, 64, 96),
                                         (60, 96, 128), (200, 64, 96),
                                         (400, 32, 32)])
def test_lla_sparse_equals_dense(num_gts, h, w):
    pred, gt = make_case(num_gts, num_gts, h, w, offset=0.0)
    ignore = InstanceData(bboxes=make_case(num_gts + 1, 3, h, w)[1].bboxes)
    res = lla_pair(pred, gt, ignore, prior_type='point')
    assert (res.gt_inds > 0).any()
    lla_pair(pred, gt, None, prior_type='auto', topk=3)


def test_lla_degenerate_rows_and_columns():
    """Tiny boxes (fewer than K in-box points, none at all), saturated
    scores that push in-box costs above the outside penalty, more classes
    than rows (the identity route), logits, empty GT."""
    pred, gt = make_case(7, 40, 64, 96, num_classes=5, tiny=0.6,
                         offset=0.0)
    lla_pair(pred, gt, prior_type='point')
    saturated = pred.scores.clone()
    saturated[::3] = 1.0  # every class: NEG ~ 5 * 20.7 per point
    pred.scores = saturated
    gt.labels = torch.arange(40) % 5
    lla_pair(pred, gt, prior_type='point', reg_cost=80.0)
    few = InstanceData(bboxes=gt.bboxes[:3], labels=gt.labels[:3])
    lla_pair(pred, few, prior_type='point')  # 3 rows < 5 classes
    pred.scores = torch.logit(pred.scores.clamp(1e-6, 1 - 1e-6))
    lla_pair(pred, gt, prior_type='point', score_type='logits')
    lla_pair(pred, few, prior_type='point', score_type='logits')
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    assert not lla_pair(pred, empty).gt_inds.any()


def test_lla_in_box_costs_above_the_penalty():
    """In-box costs > 999 (huge reg_cost): every row falls back to its
    dense cost row and every contested point to its dense column."""
    pred, gt = make_case(11, 30, 64, 96, offset=0.0)
    pred.bboxes = pred.bboxes * 0 + torch.tensor([0.0, 0.0, 1.0, 1.0])
    lla_pair(pred, gt, prior_type='point', reg_cost=200.0)


def test_lla_anchor_priors():
    """One square anchor per location (LLA.RetinaNet): the anchors'
    centres form the grid, its level key is the anchor size."""
    pred, gt = make_case(4, 50, 64, 96, offset=0.5)
    half = pred.priors[:, 2:3] * 2
    pred.priors = torch.cat([pred.priors[:, :2] - half,
                             pred.priors[:, :2] + half], dim=1)
    res = lla_pair(pred, gt, prior_type='anchor')
    assert (res.gt_inds > 0).sum() >= 10
    lla_pair(pred, gt, prior_type='auto')


def test_sparse_thresholds_depend_on_the_device(monkeypatch):
    """The dense paths are kept longer on a CUDA device (measured: the
    sparse listing's fixed cost is larger there); ``>`` the limit, not
    ``>=``."""
    for module, pays in ((sparse_utils,
                          lambda n, dev: sparse_utils.sparse_pays(1, n, dev)),
                         (lla, lla.sparse_pays)):
        monkeypatch.setattr(module, 'SPARSE_MIN_PAIRS', 100)
        monkeypatch.setattr(module, 'SPARSE_MIN_PAIRS_CUDA', 1000)
        for device in ('cpu', torch.device('cpu')):
            assert not pays(100, device) and pays(101, device)
        for device in ('cuda', torch.device('cuda', 0)):
            assert not pays(1000, device) and pays(1001, device)
    assert sparse_utils.sparse_pays(3, 34, 'cpu')
    assert not sparse_utils.sparse_pays(3, 34, 'cuda')


def test_the_default_thresholds():
    """The measured defaults (docs/benchmarks.md): a CrowdHuman image
    (about 23k points) goes sparse from 6 GTs for LLA and 23 GTs for the
    matching assigners on a CPU, from 358 and 90 GTs on a CUDA device."""
    assert DEFAULT_LIMITS == {'lla': (2**17, 2**23),
                              'matching': (2**19, 2**21)}
    points = 23463
    assert [min(g for g in range(1, 1000) if pays(g * points, dev))
            for pays in (lambda n, dev: n > DEFAULT_LIMITS['lla'][dev],
                         lambda n, dev: n > DEFAULT_LIMITS['matching'][dev])
            for dev in (0, 1)] == [6, 358, 23, 90]
