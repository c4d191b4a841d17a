"""The DeFCN head: FCOS towers, one-to-one assignment (POTO or a baseline),
optional 3D max filtering, optional auxiliary one-to-many loss, NMS-free
inference."""
import copy
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList)
from torch import Tensor

from ..layers.norm_defaults import DEFAULT_NORM
from ..task_modules.assigners.utils import square_anchors
from .crowd_anchor_free_head import FOCAL_LOSS, CrowdAnchorFreeHead
from .crowd_head_mixin import avg_factor, flatten_levels

DEFAULT_FILTER = dict(type='MaxFiltering3D', kernel_size=3, tau=2,
                      with_norm=True)
DEFAULT_AUX_ASSIGNER = dict(type='POTOAuxAssigner', alpha=0.8, topk=9)
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
class POTOHead(CrowdAnchorFreeHead):
    """DeFCN head (`End-to-End Object Detection with Fully Convolutional
    Network <https://arxiv.org/abs/2012.03544>`_), for every one-to-one row
    of DeFCN (POTO, its ablations and the hand-crafted baselines).

    :class:`CrowdAnchorFreeHead` (FCOS towers with GN, convs with a bias, a
    ``Scale`` per level, distances ``ReLU(scale * conv(x)) * stride``)
    without centerness; points at offset 0.5. The targets come from a
    one-to-one assigner in ``train_cfg.assigner`` (``POTOAssigner`` or a
    baseline; required), given the detached predictions. Ignore regions take
    no part: the assigners never see them and no point is excluded from a
    loss because of them (docs/algorithms.md section 2, step 5).

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
        **kwargs: :class:`CrowdAnchorFreeHead` arguments (``prior_offset``
            defaults to 0.5).
    """

    score_factor_mode = 'product'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 with_3dmf: bool = False,
                 filter_cfg: ConfigType = DEFAULT_FILTER,
                 aux_loss: OptConfigType = None,
                 anchor_scale: Optional[float] = None,
                 loss_cls: ConfigType = FOCAL_LOSS,
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
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            norm_cfg=norm_cfg,
            **kwargs)
        self.aux_loss = MODELS.build(aux_loss) if aux_loss else None
        if self.train_cfg and self.aux_loss is not None:
            self.aux_assigner = TASK_UTILS.build(
                self.train_cfg.get('aux_assigner', DEFAULT_AUX_ASSIGNER))

    @property
    def regresses_distances(self) -> bool:
        """False in the Anchor row (``anchor_scale``): raw box deltas, no
        scale and no ReLU."""
        return self.anchor_scale is None

    def _init_layers(self) -> None:
        """Towers, predictors and scales (:class:`CrowdAnchorFreeHead`),
        then the 3DMF branch (after the scales: the parameter order of
        existing checkpoints and optimizers)."""
        super()._init_layers()
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
        cls_scores, bbox_preds, reg_feats = super().forward(x)
        if self.with_3dmf:
            filter_logits = [
                self.conv_filter(f) for f in self.max_filter(reg_feats)
            ]
        else:
            filter_logits = [None] * len(cls_scores)
        return cls_scores, bbox_preds, filter_logits

    def forward_score_factor_single(self, cls_feat: Tensor,
                                    reg_feat: Tensor) -> Tensor:
        """The regression-tower features, which :meth:`forward` filters
        across levels with 3DMF."""
        return reg_feat

    def decode_boxes(self, priors: Tensor, bbox_pred: Tensor) -> Tensor:
        """Distances from points, or deltas of the square anchors (priors
        with strides in the anchor mode)."""
        if self.regresses_distances:
            return super().decode_boxes(priors, bbox_pred)
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
        flat = self.flatten_predictions(cls_scores, bbox_preds)
        logits, boxes = flat.logits, flat.bboxes
        probs = logits.sigmoid()
        if self.with_3dmf:
            probs = probs * flatten_levels(filter_logits, 1).sigmoid()

        # no ignore regions; the logits go along only where the
        # probabilities are their sigmoid
        labels, pos_gt_boxes, _ = self.get_targets(
            flat.priors, probs, boxes, batch_gt_instances,
            logits=None if self.with_3dmf else logits,
            num_level_priors=flat.num_level_priors)
        pos = labels < self.num_classes
        num_pos = avg_factor(pos)
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
            # on sigmoid(cls) without the filter (docs/algorithms.md
            # section 4)
            aux_labels, _, _ = self.get_targets(
                flat.priors, logits.sigmoid(), boxes, batch_gt_instances,
                assigner=self.aux_assigner, logits=logits,
                num_level_priors=flat.num_level_priors)
            num_aux = avg_factor(aux_labels < self.num_classes)
            losses['loss_aux'] = self.aux_loss(
                logits.reshape(-1, self.cls_out_channels),
                aux_labels.reshape(-1),
                avg_factor=num_aux)
        return losses

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
        ``SCORE_FACTOR_MODES``). The priors carry their strides (the
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
