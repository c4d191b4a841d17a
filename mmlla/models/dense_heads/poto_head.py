"""The DeFCN head: FCOS towers, one-to-one assignment (POTO or a baseline),
optional 3D max filtering, optional auxiliary one-to-many loss, NMS-free
inference."""
import copy
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import Scale
from mmdet.models.dense_heads import AnchorFreeHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, reduce_mean)
from mmengine.structures import InstanceData
from torch import Tensor

from ..task_modules.assigners.utils import square_anchors
from .crowd_head_mixin import CrowdHeadMixin, flatten_levels

DEFAULT_FILTER = dict(type='MaxFiltering3D', kernel_size=3, tau=2,
                      with_norm=True)
DEFAULT_AUX_ASSIGNER = dict(type='POTOAuxAssigner', alpha=0.8, topk=9)
DEFAULT_NORM = dict(type='GN', num_groups=32, requires_grad=True)
# Upper bound of the predicted log-scale deltas of the Anchor row
# (detectron2's Box2BoxTransform: dw, dh <= log(1000 / 16), no lower bound).
DELTA_CLAMP = math.log(1000.0 / 16)


def decode_anchor_deltas(anchors: Tensor, deltas: Tensor) -> Tensor:
    """Box deltas ``(dx, dy, dw, dh)`` (weights 1, 1, 1, 1) of ``anchors``
    to xyxy boxes: centre ``c + d * size``, size ``size * exp(min(dwh,
    log(1000/16)))``.

    Args:
        anchors (Tensor): (..., 4) xyxy.
        deltas (Tensor): (..., 4).

    Returns:
        Tensor: (..., 4) xyxy, not clipped.
    """
    size = anchors[..., 2:] - anchors[..., :2]
    centre = (anchors[..., :2] + anchors[..., 2:]) / 2
    centre = centre + deltas[..., :2] * size
    size = size * deltas[..., 2:].clamp(max=DELTA_CLAMP).exp()
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


@MODELS.register_module()
class POTOHead(CrowdHeadMixin, AnchorFreeHead):
    """DeFCN head (`End-to-End Object Detection with Fully Convolutional
    Network <https://arxiv.org/abs/2012.03544>`_), for every one-to-one row
    of DeFCN (POTO, its ablations and the hand-crafted baselines).

    FCOS towers (GN, convs with a bias, a ``Scale`` per level, distances
    ``ReLU(scale * conv(x)) * stride``) without centerness; points at offset
    0.5. The targets come from a one-to-one assigner in
    ``train_cfg.assigner`` (``POTOAssigner`` or a baseline), given the
    detached predictions. Ignore regions take no part: the assigners never
    see them and no point is excluded from a loss because of them.

    Losses, divided by the positives averaged over GPUs (at least 1):
    sigmoid focal loss over every point, on the logits without 3DMF and on
    the probabilities ``sigmoid(cls) * sigmoid(filter)`` with 3DMF (the head
    sets ``loss_cls.activated`` accordingly); GIoU on positives.

    With ``with_3dmf`` the regression-tower features pass a
    :class:`MaxFiltering3D` and a 3x3 conv gives a filter logit. With
    ``aux_loss`` an auxiliary focal loss on the logits uses the one-to-many
    targets of ``train_cfg.aux_assigner``, computed on ``sigmoid(cls)``
    without the filter and divided by its own positives (training only).
    With ``anchor_scale`` (DeFCN's one-to-one Anchor row) the regression
    branch predicts box deltas of the square anchor of side
    ``anchor_scale * stride`` centred on each point, with no scale and no
    ReLU.

    Inference: per level the top ``test_cfg.nms_pre`` scores
    (``sigmoid(cls)``, times ``sigmoid(filter)`` with 3DMF) above
    ``test_cfg.score_thr``, then the best ``test_cfg.max_per_img``;
    ``test_cfg.nms`` None is NMS-free, a dict puts class-aware NMS back.
    Boxes are clipped to the image afterwards and empty ones dropped.

    Args:
        num_classes (int): number of classes.
        in_channels (int): input channels.
        strides (sequence[int]): FPN strides. Defaults to P3-P7.
        prior_offset (float): point offset in strides. Defaults to 0.5.
        conv_bias (bool): bias in the tower convs. Defaults to True.
        with_3dmf (bool): add the 3DMF filter branch. Defaults to False.
        filter_cfg (dict): config of the 3DMF layer (``in_channels`` and
            ``norm_cfg`` are filled in from the head).
        aux_loss (dict, optional): the auxiliary sigmoid focal loss; None
            disables it.
        anchor_scale (float, optional): regress deltas of square anchors of
            this many strides. Defaults to None (distances).
        loss_cls (dict): sigmoid focal loss (``activated`` is set by the
            head).
        loss_bbox (dict): GIoU loss, weight 2.
        norm_cfg (dict): norm of the towers and of 3DMF.
        **kwargs: :class:`AnchorFreeHead` arguments.
    """

    score_factor_mode = 'product'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 prior_offset: float = 0.5,
                 conv_bias: bool = True,
                 with_3dmf: bool = False,
                 filter_cfg: ConfigType = DEFAULT_FILTER,
                 aux_loss: OptConfigType = None,
                 anchor_scale: Optional[float] = None,
                 loss_cls: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(
                     type='GIoULoss', loss_weight=2.0),
                 norm_cfg: OptConfigType = DEFAULT_NORM,
                 **kwargs) -> None:
        self.with_3dmf = with_3dmf
        self.filter_cfg = copy.deepcopy(filter_cfg)
        self.anchor_scale = anchor_scale
        loss_cls = copy.deepcopy(loss_cls)
        loss_cls['activated'] = with_3dmf
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
        self.aux_loss = MODELS.build(aux_loss) if aux_loss else None
        if self.train_cfg:
            self.assigner = TASK_UTILS.build(self.train_cfg['assigner'])
            if self.aux_loss is not None:
                self.aux_assigner = TASK_UTILS.build(
                    self.train_cfg.get('aux_assigner', DEFAULT_AUX_ASSIGNER))

    def _init_layers(self) -> None:
        """Towers and predictors (AnchorFreeHead), scales (distance
        regression only), 3DMF branch."""
        super()._init_layers()
        if self.anchor_scale is None:
            self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])
        if self.with_3dmf:
            cfg = dict(self.filter_cfg)
            cfg.update(
                in_channels=self.feat_channels,
                norm_cfg=self.norm_cfg or DEFAULT_NORM)
            self.max_filter = MODELS.build(cfg)
            self.conv_filter = nn.Conv2d(
                self.feat_channels, 1, 3, padding=1)

    def forward(
        self, x: Tuple[Tensor]
    ) -> Tuple[List[Tensor], List[Tensor], List[Optional[Tensor]]]:
        """Forward all levels.

        Args:
            x (tuple[Tensor]): per level (N, in_channels, H_l, W_l).

        Returns:
            tuple: ``cls_scores`` per level (N, C, H_l, W_l) logits,
            ``bbox_preds`` per level (N, 4, H_l, W_l) distances in pixels
            (or anchor deltas), ``filter_logits`` per level
            (N, 1, H_l, W_l), or Nones without 3DMF.
        """
        scales = self.scales if self.anchor_scale is None else \
            [None] * len(self.strides)
        cls_scores, bbox_preds, reg_feats = multi_apply(
            self.forward_single, x, scales, self.strides)
        if self.with_3dmf:
            filter_logits = [
                self.conv_filter(f) for f in self.max_filter(reg_feats)
            ]
        else:
            filter_logits = [None] * len(cls_scores)
        return cls_scores, bbox_preds, filter_logits

    def forward_single(self, x: Tensor, scale: Optional[Scale],
                       stride: int) -> Tuple[Tensor, Tensor, Tensor]:
        """One level: class logits, pixel distances (l, t, r, b) or raw
        anchor deltas, and the regression-tower features for 3DMF."""
        if self.anchor_scale is not None:
            cls_score, bbox_pred, _, reg_feat = \
                AnchorFreeHead.forward_single(self, x)
            return cls_score, bbox_pred.float(), reg_feat
        cls_score, bbox_pred, _, reg_feat = self.distance_forward_single(
            x, scale, stride)
        return cls_score, bbox_pred, reg_feat

    def decode_boxes(self, priors: Tensor, bbox_pred: Tensor) -> Tensor:
        """Distances from points, or deltas of the square anchors (priors
        with strides in the anchor mode)."""
        if self.anchor_scale is None:
            return self.bbox_coder.decode(priors[..., :2], bbox_pred)
        return decode_anchor_deltas(
            square_anchors(priors, self.anchor_scale), bbox_pred)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        filter_logits: List[Optional[Tensor]],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """Assign with the detached predictions, then compute the losses.

        Args:
            cls_scores (list[Tensor]): per level (N, C, H, W) logits.
            bbox_preds (list[Tensor]): per level (N, 4, H, W).
            filter_logits (list[Tensor | None]): per level (N, 1, H, W).
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            batch_img_metas (list[dict]): image metas.
            batch_gt_instances_ignore (list[InstanceData], optional): not
                used: ignore regions take no part in DeFCN's training.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox`` and, with the
            auxiliary loss, ``loss_aux``.
        """
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        device = cls_scores[0].device
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes,
            dtype=bbox_preds[0].dtype,
            device=device,
            with_stride=True)
        num_level_priors = [len(p) for p in mlvl_priors]
        priors = torch.cat(mlvl_priors)  # (A, 4)
        num_imgs = cls_scores[0].size(0)

        logits = flatten_levels(cls_scores, self.cls_out_channels)
        boxes = self.decode_boxes(
            priors[None].expand(num_imgs, -1, -1),
            flatten_levels(bbox_preds, 4))
        probs = logits.sigmoid()
        if self.with_3dmf:
            probs = probs * flatten_levels(filter_logits, 1).sigmoid()

        # the logits go along only where the probabilities are their sigmoid
        labels, pos_gt_boxes = self.get_targets(
            self.assigner, priors, probs,
            None if self.with_3dmf else logits, boxes, batch_gt_instances,
            num_level_priors)
        pos = labels < self.num_classes
        num_pos = reduce_mean(pos.sum().to(torch.float)).clamp(min=1.0)
        cls_input = probs if self.with_3dmf else logits
        losses = dict(
            loss_cls=self.loss_cls(
                cls_input.reshape(-1, self.cls_out_channels),
                labels.reshape(-1),
                avg_factor=num_pos))
        if pos.any():
            losses['loss_bbox'] = self.loss_bbox(
                boxes[pos], pos_gt_boxes[pos], avg_factor=num_pos)
        else:
            losses['loss_bbox'] = boxes.sum() * 0

        if self.aux_loss is not None:
            aux_probs = logits.sigmoid()
            aux_labels, _ = self.get_targets(
                self.aux_assigner, priors, aux_probs, logits, boxes,
                batch_gt_instances, num_level_priors)
            num_aux = reduce_mean(
                (aux_labels < self.num_classes).sum().to(
                    torch.float)).clamp(min=1.0)
            losses['loss_aux'] = self.aux_loss(
                logits.reshape(-1, self.cls_out_channels),
                aux_labels.reshape(-1),
                avg_factor=num_aux)
        return losses

    @torch.no_grad()
    def get_targets(self, assigner, priors: Tensor, probs: Tensor,
                     logits: Optional[Tensor], boxes: Tensor,
                     batch_gt_instances: InstanceList,
                     num_level_priors: List[int]) -> Tuple[Tensor, Tensor]:
        """Run ``assigner`` on every image (no ignore regions).

        Args:
            assigner: a one-to-one (or the auxiliary) assigner.
            priors (Tensor): (A, 4) points with strides.
            probs (Tensor): (N, A, C) probabilities the assigner ranks.
            logits (Tensor, optional): (N, A, C) classification logits
                whose sigmoid is ``probs`` (for the assigners that score
                losses on logits), or None.
            boxes (Tensor): (N, A, 4) decoded predictions.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            num_level_priors (list[int]): points per level.

        Returns:
            tuple: ``labels`` (N, A) (``num_classes`` = background) and
            ``gt_boxes`` (N, A, 4), the assigned GT box of positives (zeros
            elsewhere).
        """
        num_imgs, num_priors = probs.shape[:2]
        labels = probs.new_full((num_imgs, num_priors),
                                self.num_classes,
                                dtype=torch.long)
        gt_boxes = boxes.new_zeros(num_imgs, num_priors, 4)
        for i in range(num_imgs):
            pred = InstanceData(
                priors=priors,
                scores=probs[i].detach(),
                bboxes=boxes[i].detach())
            if logits is not None:
                pred.logits = logits[i].detach()
            result = assigner.assign(
                pred, batch_gt_instances[i],
                num_level_priors=num_level_priors)
            pos = result.gt_inds > 0
            gt_idx = result.gt_inds[pos] - 1
            labels[i, pos] = batch_gt_instances[i].labels[gt_idx].long()
            gt_boxes[i, pos] = batch_gt_instances[i].bboxes[gt_idx].to(
                gt_boxes)
        return labels, gt_boxes

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        filter_logits: Optional[List[Optional[Tensor]]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg=None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Decode detections; the filter logits play mmdet's
        ``score_factors`` slot (ranked as a product, see
        :class:`CrowdHeadMixin`). The priors carry their strides (the
        anchor mode needs them)."""
        if filter_logits is not None and filter_logits[0] is None:
            filter_logits = None
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes,
            dtype=cls_scores[0].dtype,
            device=cls_scores[0].device,
            with_stride=True)
        results = []
        for img_id, img_meta in enumerate(batch_img_metas):
            results.append(
                self._predict_by_feat_single(
                    [c[img_id].detach() for c in cls_scores],
                    [b[img_id].detach() for b in bbox_preds],
                    [None] * len(cls_scores) if filter_logits is None else
                    [f[img_id].detach() for f in filter_logits],
                    mlvl_priors, img_meta, cfg, rescale=rescale,
                    with_nms=with_nms))
        return results
