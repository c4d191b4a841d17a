"""POTOHead (every DeFCN one-to-one row), by value: points at offset 0.5,
losses recomputed independently on predictions that overlap their GTs
(focal on logits without 3DMF, on filtered probabilities with it; GIoU x2;
the auxiliary loss on unfiltered probabilities), ignore regions taking no
part, the Anchor row's deltas, NMS-free inference across levels, NMS
switched on, clipping after the final top-k."""
import math
from unittest import mock

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmlla  # noqa: F401  (registers POTOHead)
from head_cases import (GN4, IMG, STRIDES, close, crowd, decode, flat_levels,
                        focal_from_logits, focal_from_probs, grid_points,
                        iou_giou, onehot, planted_distances, sizes,
                        to_levels)

NUM_CLASSES = 2
FOCAL = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
             loss_weight=1.0)


def build_head(with_3dmf=False, aux=False, assigner=None, nms=None,
               max_per_img=7, **kwargs):
    cfg = dict(
        type='POTOHead',
        num_classes=NUM_CLASSES,
        in_channels=8,
        feat_channels=8,
        stacked_convs=1,
        strides=STRIDES,
        norm_cfg=GN4,
        with_3dmf=with_3dmf,
        aux_loss=FOCAL if aux else None,
        train_cfg=dict(assigner=assigner or dict(type='POTOAssigner')),
        test_cfg=ConfigDict(
            nms_pre=1000, score_thr=0.05, nms=nms, max_per_img=max_per_img),
        **kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def inputs(num_imgs=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(num_imgs, 8, h, w, generator=g) for h, w in sizes()]


def planted(seed=0, saturate=False):
    """Logits and distances for the points at offset 0.5; with
    ``saturate`` one background point far from every GT has logit +120 and
    one -120 (where focal losses of logits and of probabilities differ)."""
    gts, ignores, metas = crowd()
    points = grid_points(0.5)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, len(points), NUM_CLASSES, generator=g)
    if saturate:
        # P3 (4, 4) lies outside every GT box: a negative everywhere
        logits[:, 0, 0] = 120.0
        logits[:, 0, 1] = -120.0
    dist = planted_distances(points, gts, seed)
    return to_levels(logits), to_levels(dist), gts, ignores, metas, points


def expected_losses(head, logits, probs, boxes, points, gts, use_logits):
    """Focal over every point / max(1, positives), GIoU x2 / same."""
    focal = giou_sum = 0.
    num_pos = 0
    for i in range(len(gts)):
        pred = InstanceData(priors=points, scores=probs[i], bboxes=boxes[i])
        if use_logits:
            pred.logits = logits[i]
        res = head.assigner.assign(pred, gts[i])
        pos = res.gt_inds > 0
        labels = torch.full((len(points), ), NUM_CLASSES)
        labels[pos] = gts[i].labels[res.gt_inds[pos] - 1]
        target = onehot(labels, NUM_CLASSES)
        if use_logits:
            focal += focal_from_logits(logits[i], target).sum()
        else:
            focal += focal_from_probs(probs[i], target).sum()
        _, giou = iou_giou(boxes[i][pos], gts[i].bboxes[res.gt_inds[pos] - 1])
        giou_sum += (1 - giou).sum()
        num_pos += int(pos.sum())
    assert num_pos == sum(len(g) for g in gts)  # one point per GT
    return focal / num_pos, 2.0 * giou_sum / num_pos


def test_points_sit_at_offset_half():
    head = build_head()
    assert head.prior_offset == 0.5
    priors = torch.cat(head.prior_generator.grid_priors(
        sizes(), device='cpu', with_stride=True))
    torch.testing.assert_close(priors, grid_points(0.5))


def test_poto_losses_by_value_focal_on_logits():
    head = build_head()
    cls, box, gts, ign, metas, points = planted(seed=1, saturate=True)
    losses = head.loss_by_feat(cls, box, [None] * 3, gts, metas, ign)
    logits, boxes = flat_levels(cls), decode(points, flat_levels(box))
    focal, giou = expected_losses(head, logits, logits.sigmoid(), boxes,
                                  points, gts, use_logits=True)
    close(losses['loss_cls'], focal)
    close(losses['loss_bbox'], giou)
    # the saturated point: a probability-based focal loss (BCE clamped at
    # log = -100) would be 75 there instead of 90
    prob_focal, _ = expected_losses(head, logits, logits.sigmoid(), boxes,
                                    points, gts, use_logits=False)
    assert not torch.isclose(torch.as_tensor(float(prob_focal)),
                             torch.as_tensor(float(focal)), rtol=1e-3)


def test_3dmf_losses_by_value_focal_on_filtered_probabilities():
    head = build_head(with_3dmf=True)
    cls, box, gts, ign, metas, points = planted(seed=2)
    g = torch.Generator().manual_seed(7)
    filt = [torch.randn(2, 1, h, w, generator=g) for h, w in sizes()]
    losses = head.loss_by_feat(cls, box, filt, gts, metas, ign)
    logits, boxes = flat_levels(cls), decode(points, flat_levels(box))
    probs = logits.sigmoid() * flat_levels(filt).sigmoid()
    focal, giou = expected_losses(head, logits, probs, boxes, points, gts,
                                  use_logits=False)
    close(losses['loss_cls'], focal)
    close(losses['loss_bbox'], giou)


def test_aux_loss_by_value_on_unfiltered_probabilities():
    head = build_head(with_3dmf=True, aux=True)
    cls, box, gts, ign, metas, points = planted(seed=3)
    g = torch.Generator().manual_seed(8)
    filt = [torch.randn(2, 1, h, w, generator=g) * 3 for h, w in sizes()]
    losses = head.loss_by_feat(cls, box, filt, gts, metas, ign)
    logits, boxes = flat_levels(cls), decode(points, flat_levels(box))

    def aux_loss(probs):
        focal, num_pos = 0., 0
        for i in range(2):
            res = head.aux_assigner.assign(
                InstanceData(priors=points, scores=probs[i],
                             bboxes=boxes[i]), gts[i],
                num_level_priors=[h * w for h, w in sizes()])
            pos = res.gt_inds > 0
            labels = torch.full((len(points), ), NUM_CLASSES)
            labels[pos] = gts[i].labels[res.gt_inds[pos] - 1]
            focal += focal_from_logits(logits[i],
                                       onehot(labels, NUM_CLASSES)).sum()
            num_pos += int(pos.sum())
        assert num_pos > sum(len(g) for g in gts)  # one-to-many
        return focal / num_pos

    want = aux_loss(logits.sigmoid())
    close(losses['loss_aux'], want)
    filtered = aux_loss(logits.sigmoid() * flat_levels(filt).sigmoid())
    assert abs(float(filtered) - float(want)) > 1e-3


@pytest.mark.parametrize('with_3dmf, aux', [(False, False), (True, True)])
def test_ignore_regions_take_no_part(with_3dmf, aux):
    head = build_head(with_3dmf=with_3dmf, aux=aux)
    outs = head(inputs(seed=4))
    gts, ign, metas = crowd()
    with_ign = head.loss_by_feat(*outs, gts, metas, ign)
    without = head.loss_by_feat(*outs, gts, metas, None)
    for key in with_ign:
        torch.testing.assert_close(with_ign[key], without[key])
    # and every point gets a classification gradient, near ignore boxes too
    cls = [c.detach().requires_grad_() for c in outs[0]]
    loss = head.loss_by_feat(cls, *outs[1:], gts, metas, ign)['loss_cls']
    loss.backward()
    assert (flat_levels([c.grad for c in cls]).abs().sum(-1) > 0).all()


def test_loss_without_gts():
    head = build_head(with_3dmf=True, aux=True)
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    _, _, metas = crowd()
    losses = head.loss_by_feat(*head(inputs()), [empty, empty], metas)
    assert losses['loss_bbox'] == 0 and losses['loss_cls'] > 0
    sum(losses.values()).backward()


@pytest.mark.parametrize('assigner', [
    dict(type='One2OneCenterAssigner', regress_ranges=((-1, 16), (16, 32),
                                                        (32, 1e8))),
    dict(type='ForegroundLossAssigner', center_sampling_radius=1.5),
    dict(type='FCOSStyleAssigner', regress_ranges=((-1, 16), (16, 32),
                                                    (32, 1e8)))
])
def test_other_assigners_plug_in(assigner):
    head = build_head(assigner=assigner)
    gts, _, metas = crowd()
    losses = head.loss_by_feat(*head(inputs()), gts, metas)
    assert all(torch.isfinite(v) for v in losses.values())


def test_foreground_loss_baseline_ranks_the_logits():
    head = build_head(assigner=dict(type='ForegroundLossAssigner'))
    seen = []
    real = head.assigner.assign
    with mock.patch.object(head.assigner, 'assign',
                           side_effect=lambda p, *a, **k:
                           (seen.append(p), real(p, *a, **k))[1]):
        cls, box, gts, _, metas, _ = planted(seed=5)
        head.loss_by_feat(cls, box, [None] * 3, gts, metas)
    torch.testing.assert_close(seen[0].logits, flat_levels(cls)[0])


# --------------------------------------------------------- the Anchor row
def test_anchor_row_regresses_deltas_of_4x_stride_anchors():
    head = build_head(anchor_scale=4.0,
                      assigner=dict(type='One2OneAnchorAssigner'))
    assert not hasattr(head, 'scales')  # no per-level scale
    points = grid_points(0.5)
    g = torch.Generator().manual_seed(9)
    deltas = torch.randn(1, len(points), 4, generator=g)
    deltas[0, 0, 2:] = torch.tensor([10.0, -10.0])  # clamp high, not low
    boxes = head.decode_boxes(points[None], deltas)[0]
    # written out: anchor side 4 * s centred on the point
    side = 4 * points[:, 2]
    cx = points[:, 0] + deltas[0, :, 0] * side
    cy = points[:, 1] + deltas[0, :, 1] * side
    w = side * torch.exp(deltas[0, :, 2].clamp(max=math.log(1000 / 16)))
    h = side * torch.exp(deltas[0, :, 3].clamp(max=math.log(1000 / 16)))
    want = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    close(boxes, want)
    close(boxes[0, 2] - boxes[0, 0], 32 * 62.5)
    close(boxes[0, 3] - boxes[0, 1], 32 * math.exp(-10))
    # raw deltas: the forward applies no ReLU and no scale
    cls, reg, _ = head(inputs(1))
    feat = inputs(1)[0]
    for conv in head.reg_convs:
        feat = conv(feat)
    torch.testing.assert_close(reg[0], head.conv_reg(feat))
    # losses: GIoU of the decoded boxes of the assigned anchors
    gts, _, metas = crowd()
    losses = head.loss_by_feat(cls + [], reg, [None] * 3, gts[:1],
                               metas[:1])
    boxes = head.decode_boxes(points[None], flat_levels(reg))[0]
    res = head.assigner.assign(InstanceData(priors=points), gts[0])
    pos = res.gt_inds > 0
    _, giou = iou_giou(boxes[pos], gts[0].bboxes[res.gt_inds[pos] - 1])
    close(losses['loss_bbox'], 2.0 * (1 - giou).sum() / int(pos.sum()))


# --------------------------------------------------------------- inference
def empty_maps(num_imgs=1):
    cls = [torch.full((num_imgs, NUM_CLASSES, h, w), -9.) for h, w in sizes()]
    box = [torch.full((num_imgs, 4, h, w), 2.) for h, w in sizes()]
    filt = [torch.zeros(num_imgs, 1, h, w) for h, w in sizes()]
    return cls, box, filt


def test_nms_free_keeps_the_best_across_levels_without_nms():
    head = build_head(with_3dmf=True, max_per_img=3)
    head.eval()
    cls, box, filt = empty_maps()
    cls[0][0, 0, 0, 0] = 0.0   # P3, score .5 * sigmoid(filter)
    cls[1][0, 1, 1, 1] = 3.0   # P4
    cls[2][0, 0, 1, 0] = 2.0   # P5
    cls[2][0, 1, 0, 1] = 4.0   # P5
    filt[2][0, 0, 0, 1] = -1.0  # 0.982 * 0.269 = 0.264
    _, _, metas = crowd(1)
    with mock.patch('mmcv.ops.batched_nms') as nms1, mock.patch(
            'mmlla.models.dense_heads.crowd_head_mixin.batched_nms') as nms2:
        res = head.predict_by_feat(cls, [b.clone() for b in box], filt,
                                   batch_img_metas=metas)[0]
        nms1.assert_not_called()
        nms2.assert_not_called()
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    # scores: product of probabilities, no square root
    close(res.scores, [sig(3.0) * .5, sig(2.0) * .5, sig(4.0) * sig(-1.)])
    assert res.labels.tolist() == [1, 0, 1]
    close(res.bboxes[0], [22., 22., 26., 26.])  # P4 point (24, 24)


def test_nms_can_be_switched_back_on():
    head = build_head(nms=dict(type='nms', iou_threshold=0.6),
                      max_per_img=10)
    head.eval()
    cls, box, _ = empty_maps()
    # two same-class boxes of IoU 0.78 at P3 (20, 36) and (28, 36)
    cls[0][0, 0, 4, 2] = 2.0
    box[0][0, :, 4, 2] = torch.tensor([12., 12., 12., 12.])  # [8,24,32,48]
    cls[0][0, 0, 4, 3] = 1.0
    box[0][0, :, 4, 3] = torch.tensor([18., 12., 6., 12.])  # [10,24,34,48]
    _, _, metas = crowd(1)
    res = head.predict_by_feat(cls, box, None, batch_img_metas=metas)[0]
    assert len(res) == 1
    head.test_cfg.nms = None
    res = head.predict_by_feat(cls, box, None, batch_img_metas=metas)[0]
    assert len(res) == 2


def test_boxes_clipped_after_the_top_k_and_empty_dropped():
    head = build_head(max_per_img=2)
    head.eval()
    cls, box, _ = empty_maps()
    # best: P3 (4, 4) box [-36, -36, 8, 8]; second: P3 (12, 4) box wholly
    # above the image [4, -20, 20, -4] -> dropped after the top-k (no
    # refill); third (not in the top 2): a normal box
    cls[0][0, 0, 0, 0] = 3.0
    box[0][0, :, 0, 0] = torch.tensor([40., 40., 4., 4.])
    cls[0][0, 0, 0, 1] = 2.0
    box[0][0, :, 0, 1] = torch.tensor([8., 24., 8., -8.])
    cls[0][0, 0, 4, 4] = 1.0
    metas = [dict(img_shape=(IMG, IMG), ori_shape=(128, 128),
                  scale_factor=(0.5, 0.5))]
    res = head.predict_by_feat(cls, box, None, batch_img_metas=metas,
                               rescale=True)[0]
    close(res.bboxes, [[0., 0., 16., 16.]])
