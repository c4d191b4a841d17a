"""The base of the mmlla point heads (LLA.FCOS, the DeFCN rows and DeFCN's
FCOS / ATSS rows): mmdet's anchor-free towers, a ``Scale`` per level, the
pixel-distance regression, points at a chosen offset, and training targets
from ``train_cfg.assigner`` run on the predictions."""
from abc import abstractmethod
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import Scale
from mmdet.models.dense_heads import AnchorFreeHead
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.models.utils import multi_apply
from mmdet.registry import TASK_UTILS
from mmdet.utils import ConfigType
from torch import Tensor

from ..layers.norm_defaults import DEFAULT_NORM
from .crowd_head_mixin import CrowdHeadMixin

# The classification loss of every mmlla point head (alpha 0.25, gamma 2).
FOCAL_LOSS = dict(
    type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
    loss_weight=1.0)


class CrowdAnchorFreeHead(CrowdHeadMixin, AnchorFreeHead):
    """An anchor-free head whose targets come from a (prediction-aware)
    assigner.

    On top of mmdet's :class:`AnchorFreeHead` towers (here with GN and
    convs with a bias by default), it holds:

    - one ``Scale`` per level and the regression ``(l, t, r, b) =
      ReLU(scale * conv(x)) * stride`` in pixels, in training too (the
      assigners need decoded boxes); a head with ``regresses_distances``
      False gets the raw regression output instead and no scales;
    - points at ``((col + prior_offset) * s, (row + prior_offset) * s)``,
      the same in training and at inference;
    - ``self.assigner`` from ``train_cfg.assigner`` (or the class's
      ``default_assigner``), run by :meth:`get_targets`.

    The forward gives per level ``(cls_score, bbox_pred, third)``, where
    ``third`` is the head's own output of :meth:`forward_score_factor_single`
    (LLA's IoU logit, FCOS's centerness logit, the features POTO's 3DMF
    filters).

    Args:
        num_classes (int): number of classes.
        in_channels (int): input channels.
        strides (sequence[int]): FPN strides. Defaults to P3-P7.
        prior_offset (float): point offset in strides. Defaults to 0.5
            (mmdet's).
        conv_bias (bool): bias in the tower convs. Defaults to True.
        loss_cls (dict): sigmoid focal loss. Defaults to ``FOCAL_LOSS``.
        norm_cfg (dict): norm of the towers. Defaults to GN (32 groups).
        **kwargs: :class:`AnchorFreeHead` arguments.
    """

    # the assigner built when train_cfg names none (None: train_cfg must)
    default_assigner: Optional[dict] = None

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 prior_offset: float = 0.5,
                 conv_bias: bool = True,
                 loss_cls: ConfigType = FOCAL_LOSS,
                 norm_cfg: ConfigType = DEFAULT_NORM,
                 **kwargs) -> None:
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            strides=strides,
            conv_bias=conv_bias,
            loss_cls=loss_cls,
            norm_cfg=norm_cfg,
            **kwargs)
        # AnchorFreeHead builds its point generator with offset 0.5
        self.prior_offset = float(prior_offset)
        self.prior_generator = MlvlPointGenerator(
            self.strides, offset=self.prior_offset)
        if self.train_cfg:
            assigner = self.train_cfg.get('assigner', self.default_assigner)
            if assigner is None:
                raise KeyError(
                    f'{type(self).__name__} needs train_cfg.assigner (it '
                    'has no default assigner)')
            self.assigner = TASK_UTILS.build(assigner)

    @property
    def regresses_distances(self) -> bool:
        """True: ``bbox_pred`` is ``ReLU(scale * conv(x)) * stride``."""
        return True

    def _init_layers(self) -> None:
        """Towers and predictors (AnchorFreeHead), the head's score-factor
        branch (:meth:`_init_score_factor_layers`), then one scale per
        level when regressing distances."""
        super()._init_layers()
        self._init_score_factor_layers()
        if self.regresses_distances:
            self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def _init_score_factor_layers(self) -> None:
        """Layers built between the predictors and the scales: LLA's IoU
        predictor, FCOS's centerness predictor; none here."""

    def forward(
        self, x: Tuple[Tensor]
    ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Forward all levels.

        Args:
            x (tuple[Tensor]): per level (N, in_channels, H_l, W_l).

        Returns:
            tuple: per level ``cls_scores`` (N, C, H, W) logits,
            ``bbox_preds`` (N, 4, H, W) distances (l, t, r, b) in pixels
            (or raw regression outputs), and the outputs of
            :meth:`forward_score_factor_single`.
        """
        scales = self.scales if self.regresses_distances else \
            [None] * len(self.strides)
        return multi_apply(self.forward_single, x, scales, self.strides)

    def forward_single(self, x: Tensor, scale: Optional[Scale],
                       stride: int) -> Tuple[Tensor, Tensor, Tensor]:
        """One level: AnchorFreeHead's towers, then the pixel distances
        ``ReLU(scale * conv(x)) * stride`` (float32; the raw output when
        ``regresses_distances`` is False), and the third output.

        Returns:
            tuple: ``cls_score`` (N, C, H, W), ``bbox_pred`` (N, 4, H, W)
            and :meth:`forward_score_factor_single` of the tower features.
        """
        cls_score, bbox_pred, cls_feat, reg_feat = super().forward_single(x)
        if self.regresses_distances:
            bbox_pred = scale(bbox_pred).float().clamp(min=0) * stride
        else:
            bbox_pred = bbox_pred.float()
        return cls_score, bbox_pred, self.forward_score_factor_single(
            cls_feat, reg_feat)

    @abstractmethod
    def forward_score_factor_single(self, cls_feat: Tensor,
                                    reg_feat: Tensor) -> Tensor:
        """The head's third per-level output, from the class-tower and
        regression-tower features (N, feat_channels, H, W)."""

    def loss_priors(self, featmap_sizes: List[torch.Size],
                    dtype: torch.dtype,
                    device: torch.device) -> List[Tensor]:
        """Per level the points with their strides, (H * W, 4) each:
        ``(x, y, stride_w, stride_h)``."""
        return self.prior_generator.grid_priors(
            featmap_sizes, dtype=dtype, device=device, with_stride=True)

    def decode_boxes(self, priors: Tensor, bbox_pred: Tensor) -> Tensor:
        """The distances ``bbox_pred`` (..., 4) from the points ``priors``
        (..., 2) or with strides (..., 4), without clipping.

        Returns:
            Tensor: (..., 4) xyxy.
        """
        return super().decode_boxes(priors[..., :2], bbox_pred)
