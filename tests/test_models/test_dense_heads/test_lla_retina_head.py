"""LLARetinaHead (LLA.RetinaNet), by value: the losses and LLA's normaliser
recomputed independently (GIoU on decoded boxes, or L1 on encoded deltas
without ``reg_decoded_bbox``), no-GT images, and a training step and
inference with and without ignore regions."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmlla  # noqa: F401

from head_cases import (IMG, STRIDES, close, crowd, decode, focal_from_logits,
                        grid_points, iou_giou, onehot, planted_distances,
                        sizes, to_levels)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
NUM_CLASSES = 2


def feats(seed=0, channels=8, num_imgs=2):
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(num_imgs, channels, IMG // s, IMG // s, generator=g)
        for s in STRIDES)


def retina_head(**kwargs):
    """The tiny config's head, narrowed; ``kwargs`` override head fields."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/lla/lla-retinanet_tiny_synthetic.py'))
    head_cfg = copy.deepcopy(cfg.model.bbox_head)
    head_cfg.update(
        num_classes=NUM_CLASSES, in_channels=8, feat_channels=16,
        stacked_convs=1, train_cfg=cfg.model.train_cfg,
        test_cfg=cfg.model.test_cfg, **kwargs)
    head_cfg.anchor_generator.strides = STRIDES
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()
    return head


def test_lla_retina_losses_by_value():
    """Focal over anchors not taken by ignore regions and GIoU x2 on the
    decoded boxes, both over num_fg (ignore claims included)."""
    head = retina_head()
    assert head.assigner.prior_type == 'anchor'
    gts, ign, metas = crowd()
    anchors = torch.cat(head.prior_generator.grid_priors(sizes(), device='cpu'))
    # anchor centres sit at (col * s, row * s): LLA's points
    torch.testing.assert_close((anchors[:, :2] + anchors[:, 2:]) / 2,
                               grid_points(0.0)[:, :2])
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, len(anchors), NUM_CLASSES, generator=g)
    target_boxes = decode(grid_points(0.0),
                          planted_distances(grid_points(0.0), gts, 5))
    deltas = torch.stack([
        head.bbox_coder.encode(anchors, target_boxes[i]) for i in range(2)])
    losses = head.loss_by_feat(to_levels(logits), to_levels(deltas), gts,
                               metas, ign)
    boxes = torch.stack([
        head.bbox_coder.decode(anchors, deltas[i]) for i in range(2)])
    focal = giou_sum = 0.
    num_fg = num_pos = 0
    for i in range(2):
        res = head.assigner.assign(
            InstanceData(priors=anchors, scores=logits[i].sigmoid(),
                         bboxes=boxes[i]), gts[i], ign[i])
        pos = res.gt_inds > 0
        labels = torch.full((len(anchors), ), NUM_CLASSES)
        labels[pos] = gts[i].labels[res.gt_inds[pos] - 1]
        focal += focal_from_logits(logits[i], onehot(labels, NUM_CLASSES))[
            res.gt_inds >= 0].sum()
        _, giou = iou_giou(boxes[i][pos], gts[i].bboxes[res.gt_inds[pos] - 1])
        giou_sum += (1 - giou).sum()
        num_fg += int((res.gt_inds != 0).sum())
        num_pos += int(pos.sum())
    assert num_fg > num_pos > 0
    close(losses['loss_cls'], focal / num_fg)
    close(losses['loss_bbox'], 2.0 * giou_sum / num_fg)


@pytest.mark.parametrize('with_ignore', [True, False])
def test_lla_retina_trains_and_predicts(with_ignore):
    head = retina_head()
    x = feats(4)
    gts, ign, metas = crowd()
    if not with_ignore:
        ign = None
    losses = head.loss_by_feat(*head(x), gts, metas, ign)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    head.eval()
    res = head.predict_by_feat(*head(x), batch_img_metas=metas)
    assert len(res) == 2 and res[0].bboxes.shape[1] == 4


def test_lla_retina_regresses_encoded_deltas_without_reg_decoded_bbox():
    """reg_decoded_bbox=False: loss_bbox on the deltas against the GT
    encoded on the anchor (DeltaXYWH, stds 0.1, 0.1, 0.2, 0.2), over
    num_fg."""
    head = retina_head(reg_decoded_bbox=False,
                      loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    gts, ign, metas = crowd(1)
    anchors = torch.cat(head.prior_generator.grid_priors(sizes(),
                                                         device='cpu'))
    g = torch.Generator().manual_seed(9)
    logits = torch.randn(1, len(anchors), NUM_CLASSES, generator=g)
    deltas = torch.randn(1, len(anchors), 4, generator=g) * 0.1

    losses = head.loss_by_feat(to_levels(logits), to_levels(deltas), gts,
                               metas, ign)
    boxes = head.bbox_coder.decode(anchors, deltas[0])
    res = head.assigner.assign(
        InstanceData(priors=anchors, scores=logits[0].sigmoid(),
                     bboxes=boxes), gts[0], ign[0])
    pos = res.gt_inds > 0
    num_fg = int((res.gt_inds != 0).sum())
    assert num_fg > int(pos.sum()) > 0
    a, t = anchors[pos].double(), gts[0].bboxes[res.gt_inds[pos] - 1].double()
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    tw, th = t[:, 2] - t[:, 0], t[:, 3] - t[:, 1]
    target = torch.stack([
        ((t[:, 0] + t[:, 2]) - (a[:, 0] + a[:, 2])) / 2 / aw / 0.1,
        ((t[:, 1] + t[:, 3]) - (a[:, 1] + a[:, 3])) / 2 / ah / 0.1,
        torch.log(tw / aw) / 0.2,
        torch.log(th / ah) / 0.2], -1)
    want = (deltas[0][pos].double() - target).abs().sum() / num_fg
    close(losses['loss_bbox'], want)


def test_lla_retina_without_gts():
    """No GT: num_fg = 0 -> focal sum over every anchor / 1; loss_bbox 0."""
    head = retina_head()
    num = sum(h * w for h, w in sizes())
    g = torch.Generator().manual_seed(13)
    logits = torch.randn(1, num, NUM_CLASSES, generator=g)
    cls = to_levels(logits)
    box = [torch.full((1, 4, h, w), 0.3) for h, w in sizes()]
    gts = [InstanceData(bboxes=torch.zeros(0, 4),
                        labels=torch.zeros(0, dtype=torch.long))]
    losses = head.loss_by_feat(cls, box, gts, crowd(1)[2], None)
    want = focal_from_logits(logits[0],
                             torch.zeros(num, NUM_CLASSES)).sum()
    close(losses['loss_cls'], want)
    close(losses['loss_bbox'], 0.)
