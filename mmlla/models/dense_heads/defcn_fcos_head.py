"""FCOS as DeFCN's reference code runs it (the FCOS and ATSS rows)."""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import Scale
from mmdet.models.dense_heads import AnchorFreeHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList, reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from .crowd_head_mixin import CrowdHeadMixin, flatten_levels

DEFAULT_ASSIGNER = dict(type='FCOSStyleAssigner', center_sampling_radius=1.5)
DEFAULT_NORM = dict(type='GN', num_groups=32, requires_grad=True)


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
class DeFCNFCOSHead(CrowdHeadMixin, AnchorFreeHead):
    """FCOS head of DeFCN's FCOS and ATSS rows (cvpods' FCOS).

    mmdet's anchor-free towers (GN, convs with a bias), a ``Scale`` per
    level, distances ``ReLU(scale * conv(x)) * stride`` in pixels and a
    centerness branch on the regression tower (``centerness_on_reg``).
    Unlike mmdet's :class:`FCOSHead`, the positives come from
    ``train_cfg.assigner``: ``FCOSStyleAssigner`` (centre square of 1.5
    strides intersected with the box, FCOS's scale ranges, smallest area)
    for the FCOS rows, ``PointATSSAssigner`` (ATSS with an 8 x stride square
    anchor per point) for DeFCN's ATSS row. Ignore regions take no part.

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
        prior_offset (float): point offset in strides. Defaults to 0.5.
        conv_bias (bool): bias in the tower convs. Defaults to True.
        centerness_on_reg (bool): centerness on the regression tower.
            Defaults to True.
        norm_on_bbox (bool): mmdet's FCOSHead name for the
            ``ReLU(...) * stride`` regression; only True is supported.
        loss_cls (dict): sigmoid focal loss on logits.
        loss_bbox (dict): GIoU loss (weight 1.0 for FCOS, 2.0 for ATSS).
        loss_centerness (dict): sigmoid BCE of the centerness.
        norm_cfg (dict): norm of the towers. Defaults to GN (32 groups).
        **kwargs: :class:`AnchorFreeHead` arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 prior_offset: float = 0.5,
                 conv_bias: bool = True,
                 centerness_on_reg: bool = True,
                 norm_on_bbox: bool = True,
                 loss_cls: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(
                     type='GIoULoss', loss_weight=1.0),
                 loss_centerness: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=1.0),
                 norm_cfg: ConfigType = DEFAULT_NORM,
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
            conv_bias=conv_bias,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            norm_cfg=norm_cfg,
            **kwargs)
        self.set_prior_offset(prior_offset)
        self.loss_centerness = MODELS.build(loss_centerness)
        if self.train_cfg:
            self.assigner = TASK_UTILS.build(
                self.train_cfg.get('assigner', DEFAULT_ASSIGNER))

    def _init_layers(self) -> None:
        """Towers and predictors (AnchorFreeHead), the centerness predictor
        and one scale per level."""
        super()._init_layers()
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def forward(
        self, x: Tuple[Tensor]
    ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Forward all levels.

        Returns:
            tuple: per level ``cls_scores`` (N, C, H, W) logits,
            ``bbox_preds`` (N, 4, H, W) pixel distances, ``centernesses``
            (N, 1, H, W) logits.
        """
        return multi_apply(self.forward_single, x, self.scales, self.strides)

    def forward_single(self, x: Tensor, scale: Scale,
                       stride: int) -> Tuple[Tensor, Tensor, Tensor]:
        """One level: class logits, pixel distances, centerness logits."""
        cls_score, bbox_pred, cls_feat, reg_feat = \
            self.distance_forward_single(x, scale, stride)
        centerness = self.conv_centerness(
            reg_feat if self.centerness_on_reg else cls_feat)
        return cls_score, bbox_pred, centerness

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
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes,
            dtype=bbox_preds[0].dtype,
            device=bbox_preds[0].device,
            with_stride=True)
        priors = torch.cat(mlvl_priors)
        num_level_priors = [len(p) for p in mlvl_priors]
        logits = flatten_levels(cls_scores, self.cls_out_channels)
        distances = flatten_levels(bbox_preds, 4)
        ctr_logits = flatten_levels(centernesses, 1)[..., 0]

        labels, gt_boxes = self.get_targets(priors, batch_gt_instances,
                                             num_level_priors)
        pos = labels < self.num_classes
        num_pos = reduce_mean(pos.sum().to(torch.float)).clamp(min=1.0)
        loss_cls = self.loss_cls(
            logits.reshape(-1, self.cls_out_channels),
            labels.reshape(-1),
            avg_factor=num_pos)
        if pos.any():
            points = priors[None, :, :2].expand(len(logits), -1, -1)[pos]
            pos_boxes = self.bbox_coder.decode(points, distances[pos])
            ctr_targets = centerness_target(points, gt_boxes[pos])
            ctr_norm = reduce_mean(ctr_targets.sum().detach()).clamp(min=1.0)
            loss_bbox = self.loss_bbox(
                pos_boxes,
                gt_boxes[pos],
                weight=ctr_targets,
                avg_factor=ctr_norm)
            loss_centerness = self.loss_centerness(
                ctr_logits[pos], ctr_targets, avg_factor=num_pos)
        else:
            loss_bbox = distances.sum() * 0
            loss_centerness = ctr_logits.sum() * 0
        return dict(
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_centerness=loss_centerness)

    @torch.no_grad()
    def get_targets(self, priors: Tensor, batch_gt_instances: InstanceList,
                     num_level_priors: List[int]) -> Tuple[Tensor, Tensor]:
        """``labels`` (N, A) (``num_classes`` = background) and the assigned
        GT box of positives ``gt_boxes`` (N, A, 4)."""
        labels, gt_boxes = [], []
        for gt_instances in batch_gt_instances:
            result = self.assigner.assign(
                InstanceData(priors=priors), gt_instances,
                num_level_priors=num_level_priors)
            pos = result.gt_inds > 0
            gt_idx = (result.gt_inds - 1).clamp(min=0)
            img_labels = priors.new_full((len(priors), ), self.num_classes,
                                         dtype=torch.long)
            img_boxes = priors.new_zeros(len(priors), 4)
            if len(gt_instances) > 0:
                img_labels = torch.where(
                    pos, gt_instances.labels.long()[gt_idx], img_labels)
                img_boxes = torch.where(
                    pos[:, None], gt_instances.bboxes[gt_idx].to(img_boxes),
                    img_boxes)
            labels.append(img_labels)
            gt_boxes.append(img_boxes)
        return torch.stack(labels), torch.stack(gt_boxes)
