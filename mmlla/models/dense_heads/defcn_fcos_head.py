"""FCOS as DeFCN's reference code runs it (the FCOS and ATSS rows)."""
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from torch import Tensor

from .crowd_anchor_free_head import CrowdAnchorFreeHead
from .crowd_head_mixin import avg_factor, flatten_levels

DEFAULT_ASSIGNER = dict(type='FCOSStyleAssigner', center_sampling_radius=1.5)


def centerness_target(points: Tensor, boxes: Tensor) -> Tensor:
    """FCOS's centerness ``sqrt(min(l, r) / max(l, r) * min(t, b) /
    max(t, b))`` of points inside their boxes.

    Args:
        points (Tensor): (P, 2).
        boxes (Tensor): (P, 4) xyxy.

    Returns:
        Tensor: (P,).
    """
    left_right = torch.stack(
        [points[:, 0] - boxes[:, 0], boxes[:, 2] - points[:, 0]], -1)
    top_bottom = torch.stack(
        [points[:, 1] - boxes[:, 1], boxes[:, 3] - points[:, 1]], -1)
    ratio = (left_right.min(-1).values / left_right.max(-1).values) * (
        top_bottom.min(-1).values / top_bottom.max(-1).values)
    return ratio.clamp(min=0).sqrt()


@MODELS.register_module()
class DeFCNFCOSHead(CrowdAnchorFreeHead):
    """FCOS head of DeFCN's FCOS and ATSS rows (cvpods' FCOS).

    :class:`CrowdAnchorFreeHead` (GN towers, convs with a bias, a ``Scale``
    per level, distances ``ReLU(scale * conv(x)) * stride`` in pixels) and
    a centerness branch on the regression tower (``centerness_on_reg``).
    Unlike mmdet's :class:`FCOSHead`, the positives come from
    ``train_cfg.assigner``: ``FCOSStyleAssigner`` (centre square of 1.5
    strides intersected with the box, FCOS's scale ranges, smallest area)
    for the FCOS rows, ``PointATSSAssigner`` (ATSS with an 8 x stride square
    anchor per point) for DeFCN's ATSS row; both look at the points only.
    Ignore regions take no part (docs/algorithms.md section 2, step 5).

    Losses (cvpods' FCOS): focal loss over every point divided by
    ``max(1, positives averaged over GPUs)``; GIoU of each positive weighted
    by its centerness target, divided by ``max(1, the GPU-averaged sum of
    the centerness targets)``; centerness BCE divided by the first
    normaliser.

    Inference: per level the top ``test_cfg.nms_pre`` by ``sigmoid(cls)``
    above ``test_cfg.score_thr``, score ``sqrt(sigmoid(cls) *
    sigmoid(ctr))``, class-aware NMS, the best ``test_cfg.max_per_img``,
    boxes clipped to the image afterwards and empty ones dropped.

    Args:
        num_classes (int): number of classes.
        in_channels (int): input channels.
        strides (sequence[int]): FPN strides. Defaults to P3-P7.
        centerness_on_reg (bool): centerness on the regression tower.
            Defaults to True.
        norm_on_bbox (bool): mmdet's FCOSHead name for the
            ``ReLU(...) * stride`` regression; only True is supported.
        loss_bbox (dict): GIoU loss (weight 1.0 for FCOS, 2.0 for ATSS).
        loss_centerness (dict): sigmoid BCE of the centerness.
        **kwargs: :class:`CrowdAnchorFreeHead` arguments (``prior_offset``
            defaults to 0.5).
    """

    default_assigner = DEFAULT_ASSIGNER

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 centerness_on_reg: bool = True,
                 norm_on_bbox: bool = True,
                 loss_bbox: ConfigType = dict(
                     type='GIoULoss', loss_weight=1.0),
                 loss_centerness: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=1.0),
                 **kwargs) -> None:
        if not norm_on_bbox:
            raise ValueError(
                'DeFCNFCOSHead regresses ReLU(scale * conv(x)) * stride '
                '(norm_on_bbox=True), as the reference code does')
        self.norm_on_bbox = norm_on_bbox
        self.centerness_on_reg = centerness_on_reg
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            strides=strides,
            loss_bbox=loss_bbox,
            **kwargs)
        self.loss_centerness = MODELS.build(loss_centerness)

    def _init_score_factor_layers(self) -> None:
        """The centerness predictor."""
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)

    def forward_score_factor_single(self, cls_feat: Tensor,
                                    reg_feat: Tensor) -> Tensor:
        """The centerness logit (N, 1, H, W), on the regression tower
        (``centerness_on_reg``) or the class tower."""
        return self.conv_centerness(
            reg_feat if self.centerness_on_reg else cls_feat)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        centernesses: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """Targets from the assigner, then cvpods' FCOS losses.

        Args:
            cls_scores (list[Tensor]): per level (N, C, H, W) logits.
            bbox_preds (list[Tensor]): per level (N, 4, H, W) distances.
            centernesses (list[Tensor]): per level (N, 1, H, W) logits.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            batch_img_metas (list[dict]): image metas.
            batch_gt_instances_ignore (list[InstanceData], optional): not
                used (DeFCN removes ignore regions before assignment).

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``,
            ``loss_centerness``.
        """
        flat = self.flatten_predictions(cls_scores, bbox_preds)
        logits = flat.logits
        ctr_logits = flatten_levels(centernesses, 1)[..., 0]

        # the assigners look at the points only; no ignore regions
        labels, gt_boxes, _ = self.get_targets(
            flat.priors, None, None, batch_gt_instances,
            num_level_priors=flat.num_level_priors)
        pos = labels < self.num_classes
        num_pos = avg_factor(pos)
        loss_cls = self.loss_cls(
            logits.reshape(-1, self.cls_out_channels),
            labels.reshape(-1),
            avg_factor=num_pos)
        if pos.any():
            points = flat.priors[None, :, :2].expand(len(logits), -1, -1)[pos]
            pos_boxes = flat.bboxes[pos]
            ctr_targets = centerness_target(points, gt_boxes[pos])
            ctr_norm = avg_factor(ctr_targets)
            loss_bbox = self.loss_bbox(
                pos_boxes,
                gt_boxes[pos],
                weight=ctr_targets,
                avg_factor=ctr_norm)
            loss_centerness = self.loss_centerness(
                ctr_logits[pos], ctr_targets, avg_factor=num_pos)
        else:
            loss_bbox = flat.bbox_preds.sum() * 0
            loss_centerness = ctr_logits.sum() * 0
        return dict(
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_centerness=loss_centerness)
