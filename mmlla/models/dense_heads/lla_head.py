"""LLA.FCOS: an FCOS head trained with loss-aware label assignment."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import Scale
from mmdet.models.dense_heads import AnchorFreeHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptInstanceList, reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from .crowd_head_mixin import CrowdHeadMixin, flatten_levels

DEFAULT_ASSIGNER = dict(type='LossAwareAssigner', topk=10, reg_cost=1.5,
                        alpha=0.25, gamma=2.0)
DEFAULT_NORM = dict(type='GN', num_groups=32, requires_grad=True)


class LossAwareTargetMixin:
    """Per-image targets from a prediction-aware assigner (``self.assigner``).

    Shared by :class:`LLAHead` and ``LLARetinaHead``; a head with another
    target rule overrides :meth:`_get_targets_single`. Requires
    ``self.assigner`` and ``self.num_classes``.
    """

    def get_targets(
        self,
        priors: Tensor,
        scores: Tensor,
        bboxes: Tensor,
        batch_gt_instances: InstanceList,
        batch_gt_instances_ignore: OptInstanceList = None,
        **kwargs
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Assign every image of the batch.

        Args:
            priors (Tensor): (A, 2) / (A, 4) priors shared by the images
                (points with strides, or anchors).
            scores (Tensor): (N, A, C) classification probabilities.
            bboxes (Tensor): (N, A, 4) decoded xyxy predictions.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            batch_gt_instances_ignore (list[InstanceData], optional): ignore
                regions (``bboxes``).
            **kwargs: passed to the assigner (e.g. ``num_level_priors``).

        Returns:
            tuple: ``labels`` (N, A) long, ``num_classes`` for background;
            ``bbox_targets`` (N, A, 4) the GT box of positives (zeros
            elsewhere); ``valid`` (N, A) bool, False for points given to an
            ignore region (excluded from every loss).
        """
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(batch_gt_instances)
        labels, bbox_targets, valid = multi_apply(
            self._get_targets_single,
            scores.detach(),
            bboxes.detach(),
            batch_gt_instances,
            batch_gt_instances_ignore,
            priors=priors,
            **kwargs)
        return (torch.stack(labels), torch.stack(bbox_targets),
                torch.stack(valid))

    @torch.no_grad()
    def _get_targets_single(self, scores: Tensor, bboxes: Tensor,
                            gt_instances: InstanceData,
                            gt_instances_ignore: Optional[InstanceData],
                            priors: Tensor,
                            **kwargs) -> Tuple[Tensor, Tensor, Tensor]:
        """One image: run the assigner on the detached predictions.

        Args:
            scores (Tensor): (A, C) probabilities.
            bboxes (Tensor): (A, 4) decoded xyxy predictions.
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): ``bboxes`` (I, 4).
            priors (Tensor): (A, 2) / (A, 4) priors.
            **kwargs: passed to the assigner.

        Returns:
            tuple: ``labels`` (A,), ``bbox_targets`` (A, 4), ``valid`` (A,)
            as in :meth:`get_targets`.
        """
        pred_instances = InstanceData(
            priors=priors, scores=scores, bboxes=bboxes)
        result = self.assigner.assign(pred_instances, gt_instances,
                                      gt_instances_ignore, **kwargs)
        num_priors = len(result.gt_inds)
        labels = result.gt_inds.new_full((num_priors, ), self.num_classes)
        bbox_targets = bboxes.new_zeros(num_priors, 4)
        if len(gt_instances) > 0:
            pos = result.gt_inds > 0
            gt_idx = (result.gt_inds - 1).clamp(min=0)
            gt_boxes = get_box_tensor(gt_instances.bboxes).to(bboxes)
            labels = torch.where(pos, gt_instances.labels.long()[gt_idx],
                                 labels)
            bbox_targets = torch.where(pos[:, None], gt_boxes[gt_idx],
                                       bbox_targets)
        return labels, bbox_targets, result.gt_inds >= 0


def count_assigned(labels: Tensor, valid: Tensor, num_classes: int) -> Tensor:
    """LLA's normaliser ``num_fg``: every point taken by a row after the
    conflict step, points taken by ignore regions included (the reference
    sums its whole matching matrix), averaged over GPUs, at least 1.

    Args:
        labels (Tensor): (N, A) labels, ``num_classes`` for background.
        valid (Tensor): (N, A) False for points taken by ignore regions.
        num_classes (int): the background label.
    """
    taken = (valid & (labels < num_classes)) | ~valid
    return reduce_mean(taken.sum().float()).clamp(min=1.0)


@MODELS.register_module()
class LLAHead(CrowdHeadMixin, LossAwareTargetMixin, AnchorFreeHead):
    """LLA.FCOS head (`LLA: Loss-aware Label Assignment for Dense Pedestrian
    Detection <https://arxiv.org/abs/2101.04307>`_).

    mmdet's anchor-free towers (GN, convs with a bias), a learnable
    ``Scale`` per level, distances ``ReLU(scale * conv(x)) * stride`` in
    pixels, and a 1-channel IoU branch (3x3 conv) on the regression tower.
    LLA's points sit at ``(col * s, row * s)`` (``prior_offset=0``), in
    training and at inference.

    Training: ``train_cfg.assigner`` (``LossAwareAssigner`` by default)
    assigns each image on the detached predictions (``sigmoid(cls)`` and the
    decoded boxes). Losses, all divided by ``num_fg`` (every point taken by
    a GT or an ignore region, averaged over GPUs, at least 1): focal loss on
    every point not taken by an ignore region, GIoU (weight 2) on positives,
    and BCE (weight 0.5) of the IoU logit against the detached IoU of the
    positive's predicted box with its GT.

    Inference: the per-level top ``test_cfg.nms_pre`` points by
    ``sigmoid(cls)`` above ``test_cfg.score_thr``, the score
    ``sqrt(sigmoid(cls) * sigmoid(iou))``, class-aware NMS, the best
    ``test_cfg.max_per_img``, then boxes clipped to the image and empty ones
    dropped.

    Args:
        num_classes (int): number of classes.
        in_channels (int): input channels.
        strides (sequence[int]): FPN strides. Defaults to P3-P7.
        prior_offset (float): point offset in strides. Defaults to 0.0.
        conv_bias (bool): bias in the tower convs. Defaults to True.
        loss_cls (dict): sigmoid focal loss on logits.
        loss_bbox (dict): GIoU loss on decoded boxes, weight 2.
        loss_iou (dict): sigmoid BCE of the IoU branch, weight 0.5.
        norm_cfg (dict): norm of the towers. Defaults to GN (32 groups).
        **kwargs: :class:`AnchorFreeHead` arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 prior_offset: float = 0.0,
                 conv_bias: bool = True,
                 loss_cls: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(
                     type='GIoULoss', loss_weight=2.0),
                 loss_iou: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=0.5),
                 norm_cfg: ConfigType = DEFAULT_NORM,
                 **kwargs) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            strides=strides,
            conv_bias=conv_bias,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            norm_cfg=norm_cfg,
            **kwargs)
        self.set_prior_offset(prior_offset)
        self.loss_iou = MODELS.build(loss_iou)
        if self.train_cfg:
            self.assigner = TASK_UTILS.build(
                self.train_cfg.get('assigner', DEFAULT_ASSIGNER))

    def _init_layers(self) -> None:
        """Towers and predictors (AnchorFreeHead), the IoU predictor on the
        regression tower and one scale per level."""
        super()._init_layers()
        self.conv_iou = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def forward(
        self, x: Tuple[Tensor]
    ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Forward all levels.

        Args:
            x (tuple[Tensor]): per level (N, in_channels, H_l, W_l).

        Returns:
            tuple: per level ``cls_scores`` (N, C, H, W) logits,
            ``bbox_preds`` (N, 4, H, W) distances (l, t, r, b) in pixels,
            ``iou_preds`` (N, 1, H, W) IoU logits.
        """
        return multi_apply(self.forward_single, x, self.scales, self.strides)

    def forward_single(self, x: Tensor, scale: Scale,
                       stride: int) -> Tuple[Tensor, Tensor, Tensor]:
        """One level: class logits, pixel distances and IoU logits."""
        cls_score, bbox_pred, _, reg_feat = self.distance_forward_single(
            x, scale, stride)
        return cls_score, bbox_pred, self.conv_iou(reg_feat)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        iou_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """Assign with the detached predictions, then compute the losses.

        Args:
            cls_scores (list[Tensor]): per level (N, C, H, W) logits.
            bbox_preds (list[Tensor]): per level (N, 4, H, W) distances.
            iou_preds (list[Tensor]): per level (N, 1, H, W) IoU logits.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            batch_img_metas (list[dict]): image metas.
            batch_gt_instances_ignore (list[InstanceData], optional): ignore
                regions.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou``.
        """
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes,
            dtype=bbox_preds[0].dtype,
            device=bbox_preds[0].device,
            with_stride=True)
        priors = torch.cat(mlvl_priors)  # (A, 4): x, y, stride_w, stride_h
        logits = flatten_levels(cls_scores, self.cls_out_channels)
        distances = flatten_levels(bbox_preds, 4)
        iou_logits = flatten_levels(iou_preds, 1)[..., 0]
        boxes = self.bbox_coder.decode(
            priors[None, :, :2].expand(len(logits), -1, -1), distances)

        labels, bbox_targets, valid = self.get_targets(
            priors, logits.sigmoid(), boxes, batch_gt_instances,
            batch_gt_instances_ignore,
            num_level_priors=[len(p) for p in mlvl_priors])
        pos = valid & (labels < self.num_classes)
        num_fg = count_assigned(labels, valid, self.num_classes)

        loss_cls = self.loss_cls(
            logits[valid], labels[valid], avg_factor=num_fg)
        pos_boxes = boxes[pos]
        if len(pos_boxes) > 0:
            pos_targets = bbox_targets[pos]
            iou_targets = bbox_overlaps(
                pos_boxes.detach(), pos_targets, is_aligned=True)
            loss_bbox = self.loss_bbox(
                pos_boxes, pos_targets, avg_factor=num_fg)
            loss_iou = self.loss_iou(
                iou_logits[pos], iou_targets, avg_factor=num_fg)
        else:
            # keep every branch in the graph (DDP) with a zero loss
            loss_bbox = distances.sum() * 0
            loss_iou = iou_logits.sum() * 0
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_iou=loss_iou)
