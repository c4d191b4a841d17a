"""LLA.FCOS: an FCOS head trained with loss-aware label assignment."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import Scale
from mmdet.models.dense_heads import FCOSHead
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptInstanceList, reduce_mean
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

DEFAULT_ASSIGNER = dict(type='LossAwareAssigner', topk=10, reg_cost=1.5,
                        alpha=0.25, gamma=2.0)
DEFAULT_NORM = dict(type='GN', num_groups=32, requires_grad=True)


def flatten_levels(maps: List[Tensor], channels: int) -> Tensor:
    """Per-level ``(N, K * channels, H, W)`` maps to ``(N, A, channels)``,
    levels concatenated in order, row-major inside a level (the order of
    mmdet's prior generators)."""
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(m.size(0), -1, channels) for m in maps
    ], dim=1)


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


@MODELS.register_module()
class LLAHead(LossAwareTargetMixin, FCOSHead):
    """LLA.FCOS head (`LLA: Loss-aware Label Assignment for Dense Pedestrian
    Detection <https://arxiv.org/abs/2101.04307>`_).

    mmdet's FCOS towers, ``Scale`` and prior generator with GN and
    ``norm_on_bbox`` (``ReLU(Scale(pred)) * stride``, in pixels in training
    too, since the assigner needs decoded boxes), and a 1-channel IoU branch
    on the regression tower in place of centerness.

    Training: ``train_cfg.assigner`` (``LossAwareAssigner`` by default)
    assigns each image on the detached predictions (``sigmoid(cls)`` and the
    decoded boxes). Losses, all divided by the positives averaged over GPUs
    (at least 1): focal loss on every point not given to an ignore region,
    GIoU (weight 2) on positives, and BCE (weight 0.5) of the IoU logit
    against the detached IoU of the positive's box with its GT.

    Inference: the per-level top ``test_cfg.nms_pre`` points by
    ``sigmoid(cls)`` above ``test_cfg.score_thr`` (mmdet's machinery), then
    the score ``sqrt(sigmoid(cls) * sigmoid(iou))``, NMS and
    ``test_cfg.max_per_img``.

    Args:
        num_classes (int): number of classes.
        in_channels (int): input channels.
        norm_on_bbox (bool): ``ReLU(pred) * stride`` instead of ``exp``.
            Defaults to True.
        loss_cls (dict): sigmoid focal loss on logits.
        loss_bbox (dict): GIoU loss on decoded boxes, weight 2.
        loss_iou (dict): sigmoid BCE of the IoU branch, weight 0.5.
        norm_cfg (dict): norm of the towers. Defaults to GN (32 groups).
        **kwargs: :class:`FCOSHead` / :class:`AnchorFreeHead` arguments
            (FCOS's regress ranges and centre sampling are not used;
            ``centerness_on_reg``, True by default, puts the IoU branch on
            the regression tower, False on the classification tower).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 norm_on_bbox: bool = True,
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
        kwargs.setdefault('centerness_on_reg', True)
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            norm_on_bbox=norm_on_bbox,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            norm_cfg=norm_cfg,
            **kwargs)
        del self.loss_centerness  # the IoU branch replaces centerness
        self.loss_iou = MODELS.build(loss_iou)
        if self.train_cfg:
            self.assigner = TASK_UTILS.build(
                self.train_cfg.get('assigner', DEFAULT_ASSIGNER))

    def _init_layers(self) -> None:
        """FCOS towers, predictors and scales, with an IoU predictor in place
        of the centerness one."""
        super()._init_layers()
        del self.conv_centerness
        self.conv_iou = nn.Conv2d(self.feat_channels, 1, 3, padding=1)

    def forward_single(self, x: Tensor, scale: Scale,
                       stride: int) -> Tuple[Tensor, Tensor, Tensor]:
        """One level.

        Args:
            x (Tensor): (N, in_channels, H, W) features.
            scale (Scale): the level's learnable scale.
            stride (int): the level's stride.

        Returns:
            tuple: ``cls_score`` (N, C, H, W) logits, ``bbox_pred``
            (N, 4, H, W) distances (l, t, r, b) in pixels, ``iou_pred``
            (N, 1, H, W) IoU logits.
        """
        # AnchorFreeHead's towers; FCOSHead's own forward_single would keep
        # the distances in stride units during training.
        cls_score, bbox_pred, cls_feat, reg_feat = \
            AnchorFreeHead.forward_single(self, x)
        iou_pred = self.conv_iou(reg_feat if self.centerness_on_reg else
                                 cls_feat)
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0) * stride
        else:
            bbox_pred = bbox_pred.exp()
        return cls_score, bbox_pred, iou_pred

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
        num_pos = reduce_mean(pos.sum().float()).clamp(min=1.0)

        loss_cls = self.loss_cls(
            logits[valid], labels[valid], avg_factor=num_pos)
        pos_boxes = boxes[pos]
        if len(pos_boxes) > 0:
            pos_targets = bbox_targets[pos]
            iou_targets = bbox_overlaps(
                pos_boxes.detach(), pos_targets, is_aligned=True)
            loss_bbox = self.loss_bbox(
                pos_boxes, pos_targets, avg_factor=num_pos)
            loss_iou = self.loss_iou(
                iou_logits[pos], iou_targets, avg_factor=num_pos)
        else:
            # keep every branch in the graph (DDP) with a zero loss
            loss_bbox = distances.sum() * 0
            loss_iou = iou_logits.sum() * 0
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_iou=loss_iou)

    def _bbox_post_process(self,
                           results: InstanceData,
                           cfg: ConfigDict,
                           rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        """mmdet's post-processing with the LLA score
        ``sqrt(sigmoid(cls) * sigmoid(iou))`` (mmdet would multiply the IoU
        probability in unrooted)."""
        if 'score_factors' in results:
            score_factors = results.pop('score_factors')
            results.scores = (results.scores * score_factors).sqrt()
        return super()._bbox_post_process(
            results, cfg, rescale=rescale, with_nms=with_nms,
            img_meta=img_meta)
