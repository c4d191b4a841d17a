"""``score_type`` of the prediction-aware assigners (LossAwareAssigner,
POTOAssigner, ForegroundLossAssigner): logits give the assignment of their
sigmoid passed as probabilities, stay exact and finite where the sigmoid
saturates, and a wrong value is refused."""
import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

import mmlla  # noqa: F401

ALPHA, GAMMA, REG, TOPK = 0.25, 2.0, 1.5, 10
TYPES = ('LossAwareAssigner', 'POTOAssigner', 'ForegroundLossAssigner')


def build(type, **kwargs):
    return TASK_UTILS.build(dict(type=type, **kwargs))


def scene(seed=0, num_classes=3, scale=2.0):
    """Points with strides on a 64 x 64 image (strides 8, 16), four
    overlapping people of several classes, predicted boxes that are jittered
    copies of the nearest GT, logits ~ N(0, scale)."""
    g = torch.Generator().manual_seed(seed)
    priors = []
    for s in (8, 16):
        ys, xs = torch.meshgrid(
            torch.arange(0, 64, s).float(),
            torch.arange(0, 64, s).float(),
            indexing='ij')
        priors.append(
            torch.stack([xs.flatten(), ys.flatten(),
                         torch.full((xs.numel(), ), float(s)),
                         torch.full((xs.numel(), ), float(s))], 1))
    priors = torch.cat(priors)
    boxes = torch.tensor([[4., 4., 34., 60.], [20., 6., 50., 58.],
                          [30., 26., 62., 62.], [2., 30., 28., 62.]])
    gt = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1, 0, 2]))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    nearest = torch.cdist(priors[:, :2], centres).argmin(1)
    bboxes = boxes[nearest] + torch.randn(len(priors), 4, generator=g) * 4
    bboxes[:, 2:] = torch.maximum(bboxes[:, 2:], bboxes[:, :2] + 1)
    logits = torch.randn(len(priors), num_classes, generator=g) * scale
    ignore = InstanceData(bboxes=torch.tensor([[36., 0., 62., 20.]]))
    return priors, logits, bboxes, gt, ignore


def preds(priors, scores, bboxes, **extra):
    return InstanceData(priors=priors, scores=scores, bboxes=bboxes, **extra)


def same(a, b):
    assert torch.equal(a.gt_inds, b.gt_inds)
    assert torch.equal(a.labels, b.labels)
    torch.testing.assert_close(a.max_overlaps, b.max_overlaps)


# ------------------------------------------------------------ the option
@pytest.mark.parametrize('type', TYPES)
def test_default_is_probs_and_a_wrong_value_raises(type):
    assert build(type).score_type == 'probs'
    assert build(type, score_type='logits').score_type == 'logits'
    for wrong in ('prob', 'sigmoid', None):
        with pytest.raises(ValueError, match='score_type'):
            build(type, score_type=wrong)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_lla_logits_same_as_sigmoid_probs(seed):
    priors, logits, bboxes, gt, ignore = scene(seed)
    on_logits = build('LossAwareAssigner', score_type='logits').assign(
        preds(priors, logits, bboxes), gt, ignore)
    on_probs = build('LossAwareAssigner').assign(
        preds(priors, logits.sigmoid(), bboxes), gt, ignore)
    same(on_logits, on_probs)
    # a real assignment: every person positive, some ignore claims
    assert set(on_logits.gt_inds[on_logits.gt_inds > 0].tolist()) == \
        {1, 2, 3, 4}
    assert (on_logits.gt_inds == -1).any()


@pytest.mark.parametrize('num_classes', [1, 3, 6])
def test_lla_logits_class_costs_match_probs(num_classes):
    """Both branches of the class cost (the (A, C) table when rows >=
    classes, the identity otherwise) agree with the probability path."""
    _, logits, _, _, _ = scene(0, num_classes)
    lg = build('LossAwareAssigner', score_type='logits')
    pr = build('LossAwareAssigner')
    torch.testing.assert_close(
        lg.class_cost_table(logits), pr.class_cost_table(logits.sigmoid()),
        rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        lg.negative_sum(logits), pr.negative_sum(logits.sigmoid()),
        rtol=1e-4, atol=1e-5)


def focal_table_f64(logits):
    """(A, C): sum over classes of the sigmoid focal loss of the logits
    against the one-hot target of each class, in float64 from the logits
    (log p = -log(1 + exp(-x)), written out)."""
    x = logits.double()
    log_p = -torch.log1p(torch.exp(-x.abs())) + torch.clamp(x, max=0)
    log_q = -torch.log1p(torch.exp(-x.abs())) + torch.clamp(-x, max=0)
    p, q = torch.exp(log_p), torch.exp(log_q)
    pos = -ALPHA * q**GAMMA * log_p
    neg = -(1 - ALPHA) * p**GAMMA * log_q
    return neg.sum(1, keepdim=True) - neg + pos


def lla_f64(points, logits, bboxes, rows, row_labels, num_gts):
    """The LLA rule literally, in float64, from the logits."""
    table = focal_table_f64(logits)  # (A, C)
    cls = table[:, row_labels].t()  # (R, A)
    g, b = rows[:, None].double(), bboxes[None].double()
    iw = (torch.minimum(g[..., 2], b[..., 2]) -
          torch.maximum(g[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(g[..., 3], b[..., 3]) -
          torch.maximum(g[..., 1], b[..., 1])).clamp(min=0)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa
    iou = iw * ih / (area(g) + area(b) - iw * ih)
    x, y = points[:, 0].double(), points[:, 1].double()
    d = torch.stack([x - g[..., 0], y - g[..., 1], g[..., 2] - x,
                     g[..., 3] - y], -1)
    inside = d.min(-1).values > 0.01
    cost = cls - REG * torch.log(
        iou.clamp(min=torch.finfo(torch.float32).eps)) + 1000.0 * (~inside)
    taken = torch.zeros_like(cost, dtype=torch.bool)
    for r in range(len(rows)):
        order = sorted(range(cost.size(1)), key=lambda a: (cost[r, a], a))
        taken[r, order[:TOPK]] = True
    gt_inds = torch.zeros(cost.size(1), dtype=torch.long)
    for a in range(cost.size(1)):
        claim = taken[:, a].nonzero().flatten()
        if len(claim) == 0:
            continue
        r = int(claim[0]) if len(claim) == 1 else int(cost[:, a].argmin())
        gt_inds[a] = r + 1 if r < num_gts else -1
    return gt_inds, cost


@pytest.mark.parametrize('seed', [0, 1])
def test_lla_saturated_logits_finite_and_exact(seed):
    """Logits of +-30 to +-120 (sigmoid exactly 0 or 1 in float32): the
    class costs stay finite and equal the float64 ones (linear in the
    logit), the assignment is the float64 rule's; the probability path
    clamps the logs there and cannot tell those logits apart."""
    priors, logits, bboxes, gt, ignore = scene(seed, num_classes=3)
    g = torch.Generator().manual_seed(seed + 10)
    sign = torch.where(logits > 0, 1.0, -1.0)
    logits = sign * (30 + 90 * torch.rand(logits.shape, generator=g))
    lg = build('LossAwareAssigner', score_type='logits')
    table = lg.class_cost_table(logits)
    assert torch.isfinite(table).all()
    torch.testing.assert_close(table.double(), focal_table_f64(logits),
                               rtol=1e-6, atol=1e-6)
    result = lg.assign(preds(priors, logits, bboxes), gt, ignore)
    rows = torch.cat([gt.bboxes, ignore.bboxes])
    row_labels = torch.cat([gt.labels, torch.zeros(1, dtype=torch.long)])
    expect, _ = lla_f64(lg.prior_points(priors), logits, bboxes, rows,
                        row_labels, len(gt))
    assert torch.equal(result.gt_inds, expect)
    assert torch.isfinite(result.max_overlaps).all()
    # the clamped probability path saturates: every confident wrong logit
    # costs the same 0.75 * log(1e12), the logit path tells them apart
    probs_table = build('LossAwareAssigner').class_cost_table(
        logits.sigmoid())
    assert probs_table.unique().numel() < table.unique().numel()


# ------------------------------------------------------------ POTO, FG loss
@pytest.mark.parametrize('match', ['hungarian', 'argmax'])
@pytest.mark.parametrize('radius', [0.0, 1.5])
def test_poto_logits_same_as_sigmoid_probs(match, radius):
    priors, logits, bboxes, gt, _ = scene(3)
    kw = dict(match=match, center_sampling_radius=radius)
    on_logits = build('POTOAssigner', score_type='logits', **kw).assign(
        preds(priors, logits, bboxes), gt)
    on_probs = build('POTOAssigner', **kw).assign(
        preds(priors, logits.sigmoid(), bboxes), gt)
    same(on_logits, on_probs)
    assert (on_logits.gt_inds > 0).sum() == len(gt)


def test_poto_saturated_logits_finite():
    priors, logits, bboxes, gt, _ = scene(4)
    logits = torch.where(logits > 0, 200.0, -200.0)
    result = build('POTOAssigner', score_type='logits').assign(
        preds(priors, logits, bboxes), gt)
    assert (result.gt_inds > 0).sum() == len(gt)
    assert torch.isfinite(result.max_overlaps).all()


@pytest.mark.parametrize('seed', [0, 5])
def test_foreground_loss_logits_same_as_probs_with_logits(seed):
    """``score_type='logits'`` is the probability path fed sigmoid(x) with
    the logits alongside (POTOHead's way), and close to it without them."""
    priors, logits, bboxes, gt, _ = scene(seed)
    on_logits = build('ForegroundLossAssigner', score_type='logits').assign(
        preds(priors, logits, bboxes), gt)
    with_logits = build('ForegroundLossAssigner').assign(
        preds(priors, logits.sigmoid(), bboxes, logits=logits), gt)
    on_probs = build('ForegroundLossAssigner').assign(
        preds(priors, logits.sigmoid(), bboxes), gt)
    same(on_logits, with_logits)
    same(on_logits, on_probs)
    assert (on_logits.gt_inds > 0).sum() == len(gt)


def test_foreground_loss_saturated_logits_finite():
    priors, logits, bboxes, gt, _ = scene(6)
    logits = torch.where(logits > 0, 150.0, -150.0)
    result = build('ForegroundLossAssigner', score_type='logits').assign(
        preds(priors, logits, bboxes), gt)
    assert (result.gt_inds > 0).sum() == len(gt)
    assert torch.isfinite(result.max_overlaps).all()
