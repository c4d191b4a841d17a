"""LLAHead (LLA.FCOS), by value: points at offset 0, the three losses and
LLA's normaliser recomputed independently on predictions that overlap their
GTs, ignore exclusion, inference (score, per-level top-k, NMS, clipping
after NMS), initialisation. LLARetinaHead: test_lla_retina_head.py; the
assigner in mmdet's YOLOX: test_yolox_reuse.py."""
import math
from unittest import mock

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmlla  # noqa: F401

from head_cases import (GN4, IMG, STRIDES, bce_logits, close, crowd, decode,
                         flat_levels, focal_from_logits, grid_points,
                         iou_giou, onehot, planted_distances, sizes,
                         to_levels)

register_all_modules(init_default_scope=True)

TEST_CFG = dict(nms_pre=1000, score_thr=0.05,
                nms=dict(type='nms', iou_threshold=0.6), max_per_img=300)
NUM_CLASSES = 2


def tiny_head(**kwargs):
    cfg = dict(
        type='LLAHead', num_classes=NUM_CLASSES, in_channels=8,
        feat_channels=16, stacked_convs=1, strides=STRIDES, norm_cfg=GN4,
        train_cfg=dict(assigner=dict(type='LossAwareAssigner', topk=4)),
        test_cfg=TEST_CFG)
    cfg.update(kwargs)
    cfg['test_cfg'] = ConfigDict(cfg['test_cfg'])  # as built from a Config
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def feats(seed=0, channels=8, num_imgs=2):
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(num_imgs, channels, IMG // s, IMG // s, generator=g)
        for s in STRIDES)


def planted(seed=0, num_imgs=2):
    """Per-level logits, distances (boxes overlapping the GTs) and IoU
    logits for LLA's points (offset 0)."""
    gts, ignores, metas = crowd(num_imgs)
    points = grid_points(0.0)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_imgs, len(points), NUM_CLASSES, generator=g)
    dist = planted_distances(points, gts, seed)
    iou = torch.randn(num_imgs, len(points), 1, generator=g)
    return (to_levels(logits), to_levels(dist), to_levels(iou), gts, ignores,
            metas, points)


# ------------------------------------------------------------------ points
def test_points_sit_at_offset_zero_in_training_and_inference():
    head = tiny_head()
    assert head.prior_offset == 0.0
    cls, box, iou, gts, ign, metas, points = planted()
    seen = []
    real = head.assigner.assign

    def spy(pred, *args, **kwargs):
        seen.append(pred.priors.clone())
        return real(pred, *args, **kwargs)

    with mock.patch.object(head.assigner, 'assign', side_effect=spy):
        head.loss_by_feat(cls, box, iou, gts, metas, ign)
    torch.testing.assert_close(seen[0], points)  # (col * s, row * s, s, s)

    # inference decodes at the same points: one confident point of P4 at
    # row 1, col 2 -> (32, 16), distances 4 / 5 / 6 / 7
    head.eval()
    cls = [torch.full((1, NUM_CLASSES, h, w), -9.) for h, w in sizes()]
    box = [torch.full((1, 4, h, w), 1.) for h, w in sizes()]
    iou = [torch.zeros(1, 1, h, w) for h, w in sizes()]
    cls[1][0, 0, 1, 2] = 3.
    box[1][0, :, 1, 2] = torch.tensor([4., 5., 6., 7.])
    res = head.predict_by_feat(cls, box, iou, batch_img_metas=metas[:1])[0]
    assert len(res) == 1
    close(res.bboxes, [[28., 11., 38., 23.]])


# ------------------------------------------------------------------ losses
def test_losses_by_value_with_lla_normaliser():
    """Focal over the points not taken by ignore regions, GIoU x2 and IoU
    BCE x0.5 on positives, all divided by num_fg = every point taken by a
    GT or an ignore region (docs/algorithms.md section 1, "LLA head")."""
    head = tiny_head()
    cls, box, iou, gts, ign, metas, points = planted(seed=1)
    losses = head.loss_by_feat(cls, box, iou, gts, metas, ign)

    logits, dist = flat_levels(cls), flat_levels(box)
    iou_logit = flat_levels(iou)[..., 0]
    boxes = decode(points, dist)
    focal = giou_sum = bce = 0.
    num_fg = num_pos = num_ign = 0
    for i in range(2):
        res = head.assigner.assign(
            InstanceData(priors=points, scores=logits[i].sigmoid(),
                         bboxes=boxes[i]), gts[i], ign[i])
        pos, ignored = res.gt_inds > 0, res.gt_inds < 0
        labels = torch.full((len(points), ), NUM_CLASSES)
        labels[pos] = gts[i].labels[res.gt_inds[pos] - 1]
        valid = ~ignored
        focal += focal_from_logits(logits[i], onehot(labels, NUM_CLASSES))[
            valid].sum()
        targets = gts[i].bboxes[res.gt_inds[pos] - 1]
        iou_t, giou = iou_giou(boxes[i][pos], targets)
        giou_sum += (1 - giou).sum()
        bce += bce_logits(iou_logit[i][pos], iou_t).sum()
        num_pos += int(pos.sum())
        num_ign += int(ignored.sum())
        num_fg += int((res.gt_inds != 0).sum())
        # the planted boxes overlap their GTs: IoU and GIoU targets differ
        assert 0.2 < float(iou_t.mean()) < 0.9
        assert (iou_t - giou).abs().max() > 0.01
    assert num_ign > 0 and num_fg == num_pos + num_ign
    close(losses['loss_cls'], focal / num_fg)
    close(losses['loss_bbox'], 2.0 * giou_sum / num_fg)
    close(losses['loss_iou'], 0.5 * bce / num_fg)


def test_ignore_assigned_points_get_no_gradient():
    head = tiny_head()
    cls, box, iou, gts, ign, metas, points = planted(seed=2)
    cls = [c.requires_grad_() for c in cls]
    iou = [i.requires_grad_() for i in iou]
    losses = head.loss_by_feat(cls, box, iou, gts, metas, ign)
    sum(losses.values()).backward()
    labels, _, valid = head.get_targets(
        points, flat_levels(cls).sigmoid(),
        decode(points, flat_levels(box)), gts, ign)
    ignored = ~valid
    assert ignored.sum() > 0
    grad = flat_levels([c.grad for c in cls]).abs().sum(-1)
    assert (grad[ignored] == 0).all()
    assert (grad[valid] > 0).all()
    assert (flat_levels([i.grad for i in iou])[..., 0][ignored] == 0).all()


def test_no_gt_images_give_finite_losses():
    head = tiny_head()
    head.train()
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    _, ign, metas = crowd()
    losses = head.loss_by_feat(*head(feats(3)), [empty, empty], metas, ign)
    assert losses['loss_bbox'] == 0 and losses['loss_iou'] == 0
    assert losses['loss_cls'] > 0
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters()
               if p.grad is not None)


# --------------------------------------------------------------- inference
def empty_maps():
    cls = [torch.full((1, NUM_CLASSES, h, w), -9.) for h, w in sizes()]
    box = [torch.full((1, 4, h, w), 2.) for h, w in sizes()]
    iou = [torch.zeros(1, 1, h, w) for h, w in sizes()]
    return cls, box, iou


def test_score_is_sqrt_and_the_level_top_k_ranks_the_class_score():
    # nms_pre=1: per level the point of highest sigmoid(cls) survives, even
    # when its IoU score makes its final score lower than another point's
    head = tiny_head(test_cfg=dict(TEST_CFG, nms_pre=1))
    head.eval()
    cls, box, iou = empty_maps()
    cls[0][0, 1, 2, 3] = 0.5      # class 1, P3 (24, 16)
    iou[0][0, 0, 2, 3] = -4.0     # poor IoU
    cls[0][0, 0, 6, 6] = 0.4      # lower class score, high IoU: dropped
    iou[0][0, 0, 6, 6] = 4.0
    cls[1][0, 0, 1, 1] = -2.9     # P4: sigmoid 0.052 > 0.05, kept
    cls[2][0, 0, 0, 0] = -3.0     # P5: 0.047 < 0.05, dropped
    metas = crowd(1)[2]
    res = head.predict_by_feat(cls, box, iou, batch_img_metas=metas)[0]
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    want = sorted([math.sqrt(sig(0.5) * sig(-4.0)),
                   math.sqrt(sig(-2.9) * 0.5)], reverse=True)
    close(res.scores, want)
    assert res.labels.tolist() == [0, 1]  # sqrt(0.052*.5) > sqrt(.62*.018)


def test_boxes_clipped_after_nms_and_empty_ones_dropped():
    # A = [-20, 8, 24, 40] (score .9) and B = [0, 8, 24, 40] (.8): IoU 0.55
    # unclipped, 1.0 once clipped. Clipping after NMS keeps both, A clipped
    # to the image; C lies wholly outside the original image: dropped.
    head = tiny_head()
    head.eval()
    cls, box, iou = empty_maps()
    # P3 point (col 0, row 3) = (0, 24): A; point (col 1, row 3) = (8, 24): B
    cls[0][0, 0, 3, 0] = 2.2
    box[0][0, :, 3, 0] = torch.tensor([20., 16., 24., 16.])
    cls[0][0, 0, 3, 1] = 1.4
    box[0][0, :, 3, 1] = torch.tensor([8., 16., 16., 16.])
    metas = [dict(img_shape=(IMG, IMG), ori_shape=(32, 32),
                  scale_factor=(2., 2.))]
    # P5 point (32, 32) with box [30, 30, 40, 40] -> /2 = [15, 15, 20, 20]
    # stays; point (0, 32) box [-10, 30, -2, 34] lies left of the image
    cls[2][0, 0, 1, 1] = 0.5
    box[2][0, :, 1, 1] = torch.tensor([2., 2., 8., 8.])
    cls[2][0, 0, 1, 0] = 1.0
    box[2][0, :, 1, 0] = torch.tensor([10., 2., -2., 2.])
    res = head.predict_by_feat(cls, box, iou, batch_img_metas=metas,
                               rescale=True)[0]
    close(res.bboxes, [[0., 4., 12., 20.], [0., 4., 12., 20.],
                       [15., 15., 20., 20.]])
    assert res.bboxes.shape == (3, 4)


def test_nms_is_class_aware_at_0_6():
    head = tiny_head()
    head.eval()
    cls, box, iou = empty_maps()
    # two same-class boxes with IoU 0.78 > 0.6 -> one; a third of the
    # other class at the same place stays; IoU 1/3 < 0.6 -> both stay
    for col, c in ((2, 0), (3, 0), (4, 1)):
        cls[0][0, c, 4, col] = 2.0 - 0.1 * col
    box[0][0, :, 4, 2] = torch.tensor([8., 8., 8., 8.])   # [8,24,24,40]
    box[0][0, :, 4, 3] = torch.tensor([14., 8., 2., 8.])  # [10,24,26,40]
    box[0][0, :, 4, 4] = torch.tensor([24., 8., -8., 8.])  # [8,24,24,40]
    metas = crowd(1)[2]
    res = head.predict_by_feat(cls, box, iou, batch_img_metas=metas)[0]
    assert sorted(res.labels.tolist()) == [0, 1]
    box[0][0, :, 4, 3] = torch.tensor([8., 8., 8., 8.])  # [16,24,32,40]
    res = head.predict_by_feat(cls, box, iou, batch_img_metas=metas)[0]
    assert sorted(res.labels.tolist()) == [0, 0, 1]


def test_max_per_img_keeps_the_best():
    head = tiny_head(test_cfg=dict(TEST_CFG, max_per_img=3,
                                   nms=dict(type='nms', iou_threshold=1.0)))
    head.eval()
    g = torch.Generator().manual_seed(0)
    cls = [torch.randn(1, NUM_CLASSES, h, w, generator=g) for h, w in sizes()]
    box = [torch.rand(1, 4, h, w, generator=g) * 8 + 1 for h, w in sizes()]
    iou = [torch.randn(1, 1, h, w, generator=g) for h, w in sizes()]
    metas = crowd(1)[2]
    res = head.predict_by_feat(cls, box, iou, batch_img_metas=metas)[0]
    p = flat_levels(cls)[0].sigmoid()
    q = flat_levels(iou)[0, :, 0].sigmoid()
    allowed = p > 0.05
    scores = torch.where(allowed, (p * q[:, None]).sqrt(), torch.zeros(()))
    close(res.scores, scores.flatten().sort(descending=True)[0][:3])


# ------------------------------------------------------------------- init
def test_head_convs_have_bias_and_reference_init():
    head = MODELS.build(dict(
        type='LLAHead', num_classes=1, in_channels=64, feat_channels=64,
        stacked_convs=2, norm_cfg=dict(type='GN', num_groups=32)))
    head.init_weights()
    convs = [m.conv for m in list(head.cls_convs) + list(head.reg_convs)]
    convs += [head.conv_cls, head.conv_reg, head.conv_iou]
    for conv in convs:
        assert conv.bias is not None
        assert 0.008 < float(conv.weight.std()) < 0.012
    for conv in convs[:-3] + [head.conv_reg, head.conv_iou]:
        assert (conv.bias == 0).all()
    close(head.conv_cls.bias, [-math.log(0.99 / 0.01)])
