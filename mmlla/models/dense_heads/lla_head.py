"""LLA.FCOS: an FCOS head trained with loss-aware label assignment."""
from typing import Dict, List, Sequence

import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from torch import Tensor

from .crowd_anchor_free_head import CrowdAnchorFreeHead
from .crowd_head_mixin import avg_factor, flatten_levels

DEFAULT_ASSIGNER = dict(type='LossAwareAssigner', prior_type='point',
                        topk=10, reg_cost=1.5, alpha=0.25, gamma=2.0)


@MODELS.register_module()
class LLAHead(CrowdAnchorFreeHead):
    """LLA.FCOS head (`LLA: Loss-aware Label Assignment for Dense Pedestrian
    Detection <https://arxiv.org/abs/2101.04307>`_).

    :class:`CrowdAnchorFreeHead` (GN towers, convs with a bias, a ``Scale``
    per level, distances ``ReLU(scale * conv(x)) * stride`` in pixels) plus
    a 1-channel IoU branch (3x3 conv) on the regression tower. LLA's points
    sit at ``(col * s, row * s)`` (``prior_offset=0``), in training and at
    inference.

    Training: ``train_cfg.assigner`` (``LossAwareAssigner`` by default)
    assigns each image on the detached predictions (``sigmoid(cls)`` and the
    decoded boxes). Losses, all divided by ``num_fg`` (every point taken by
    a GT or an ignore region, averaged over GPUs, at least 1): focal loss on
    every point not taken by an ignore region, GIoU (weight 2) on positives,
    and BCE (weight 0.5) of the IoU logit against the detached IoU of the
    positive's predicted box with its GT (docs/algorithms.md section 1,
    "LLA head").

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
        loss_bbox (dict): GIoU loss on decoded boxes, weight 2.
        loss_iou (dict): sigmoid BCE of the IoU branch, weight 0.5.
        **kwargs: :class:`CrowdAnchorFreeHead` arguments.
    """

    default_assigner = DEFAULT_ASSIGNER

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 prior_offset: float = 0.0,
                 loss_bbox: ConfigType = dict(
                     type='GIoULoss', loss_weight=2.0),
                 loss_iou: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=0.5),
                 **kwargs) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            strides=strides,
            prior_offset=prior_offset,
            loss_bbox=loss_bbox,
            **kwargs)
        self.loss_iou = MODELS.build(loss_iou)

    def _init_score_factor_layers(self) -> None:
        """The IoU predictor on the regression tower."""
        self.conv_iou = nn.Conv2d(self.feat_channels, 1, 3, padding=1)

    def forward_score_factor_single(self, cls_feat: Tensor,
                                    reg_feat: Tensor) -> Tensor:
        """The IoU logit (N, 1, H, W)."""
        return self.conv_iou(reg_feat)

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
        flat = self.flatten_predictions(cls_scores, bbox_preds)
        logits, boxes = flat.logits, flat.bboxes
        iou_logits = flatten_levels(iou_preds, 1)[..., 0]
        labels, bbox_targets, valid = self.get_targets(
            flat.priors, logits.sigmoid(), boxes, batch_gt_instances,
            batch_gt_instances_ignore,
            num_level_priors=flat.num_level_priors)
        pos = labels < self.num_classes
        # num_fg: the points of every row, ignore regions' included
        num_fg = avg_factor(pos | ~valid)

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
            loss_bbox = flat.bbox_preds.sum() * 0
            loss_iou = iou_logits.sum() * 0
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_iou=loss_iou)
