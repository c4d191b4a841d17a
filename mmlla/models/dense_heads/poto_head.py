"""The DeFCN head: FCOS towers, one-to-one assignment (POTO or a baseline),
optional 3D max filtering, optional auxiliary one-to-many loss, NMS-free
inference."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import Scale
from mmdet.models.dense_heads import AnchorFreeHead
from mmdet.models.utils import filter_scores_and_topk, multi_apply
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import cat_boxes
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, reduce_mean)
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

DEFAULT_FILTER = dict(type='MaxFiltering3D', kernel_size=3, tau=2,
                      with_norm=True)
DEFAULT_AUX_ASSIGNER = dict(type='POTOAuxAssigner', alpha=0.8, topk=9)
DEFAULT_NORM = dict(type='GN', num_groups=32, requires_grad=True)


@MODELS.register_module()
class POTOHead(AnchorFreeHead):
    """DeFCN head (`End-to-End Object Detection with Fully Convolutional
    Network <https://arxiv.org/abs/2012.03544>`_).

    FCOS towers (GN, ``Scale``, ``norm_on_bbox``) without centerness; the
    targets come from a one-to-one assigner in ``train_cfg.assigner``
    (``POTOAssigner`` or one of the hand-crafted baselines), given the
    detached predictions. Losses: focal loss on the classification
    probabilities over all non-ignored points, GIoU on positives, both
    normalised by the positives averaged across GPUs (at least 1).

    With ``with_3dmf`` the regression-tower features pass a
    :class:`MaxFiltering3D` and a 3x3 conv gives a filter logit; the
    probability is ``sigmoid(cls) * sigmoid(filter)``. With ``aux_loss`` an
    auxiliary focal loss on the unfiltered logits uses the one-to-many
    targets of ``train_cfg.aux_assigner`` (training only).

    Inference keeps, per level, the top ``test_cfg.nms_pre`` probabilities
    above ``test_cfg.score_thr``, then the best ``test_cfg.max_per_img`` by
    score; ``test_cfg.nms`` = None means NMS-free, a dict puts NMS back.

    Args:
        num_classes (int): number of classes.
        in_channels (int): input channels.
        with_3dmf (bool): add the 3DMF filter branch. Defaults to True.
        filter_cfg (dict): config of the 3DMF layer (``in_channels`` and
            ``norm_cfg`` are filled in from the head).
        aux_loss (dict, optional): loss config of the auxiliary loss
            (a sigmoid focal loss); None disables it.
        norm_on_bbox (bool): ``ReLU(pred) * stride`` instead of ``exp``.
            Defaults to True.
        loss_cls (dict): focal loss on probabilities (``activated=True``).
        loss_bbox (dict): GIoU loss, weight 2.
        norm_cfg (dict): norm of the towers and of 3DMF.
        **kwargs: :class:`AnchorFreeHead` arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 with_3dmf: bool = True,
                 filter_cfg: ConfigType = DEFAULT_FILTER,
                 aux_loss: OptConfigType = None,
                 norm_on_bbox: bool = True,
                 loss_cls: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     activated=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(
                     type='GIoULoss', loss_weight=2.0),
                 norm_cfg: OptConfigType = DEFAULT_NORM,
                 **kwargs) -> None:
        if not loss_cls.get('activated', False):
            raise ValueError('POTOHead applies its focal loss to '
                             'probabilities: set loss_cls.activated=True')
        self.with_3dmf = with_3dmf
        self.filter_cfg = copy.deepcopy(filter_cfg)
        self.norm_on_bbox = norm_on_bbox
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            norm_cfg=norm_cfg,
            **kwargs)
        self.aux_loss = MODELS.build(aux_loss) if aux_loss else None
        if self.train_cfg:
            self.assigner = TASK_UTILS.build(self.train_cfg['assigner'])
            if self.aux_loss is not None:
                self.aux_assigner = TASK_UTILS.build(
                    self.train_cfg.get('aux_assigner', DEFAULT_AUX_ASSIGNER))

    def _init_layers(self) -> None:
        """Towers and predictors (AnchorFreeHead), scales, 3DMF branch."""
        super()._init_layers()
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
            ``bbox_preds`` per level (N, 4, H_l, W_l) distances in pixels,
            ``filter_logits`` per level (N, 1, H_l, W_l), or Nones without
            3DMF.
        """
        cls_scores, bbox_preds, reg_feats = multi_apply(
            self.forward_single, x, self.scales, self.strides)
        if self.with_3dmf:
            filter_logits = [
                self.conv_filter(f) for f in self.max_filter(reg_feats)
            ]
        else:
            filter_logits = [None] * len(cls_scores)
        return cls_scores, bbox_preds, filter_logits

    def forward_single(self, x: Tensor, scale: Scale,
                       stride: int) -> Tuple[Tensor, Tensor, Tensor]:
        """One level: class logits, pixel distances (l, t, r, b), and the
        regression-tower features for 3DMF."""
        cls_score, bbox_pred, _, reg_feat = super().forward_single(x)
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            # unlike mmdet's FCOSHead, distances are in pixels in training
            # too: the assigner needs decoded boxes.
            bbox_pred = bbox_pred.clamp(min=0) * stride
        else:
            bbox_pred = bbox_pred.exp()
        return cls_score, bbox_pred, reg_feat

    def _probabilities(self, cls_score: Tensor,
                       filter_logit: Optional[Tensor]) -> Tensor:
        """``sigmoid(cls) [* sigmoid(filter)]`` (shapes broadcast)."""
        prob = cls_score.sigmoid()
        if filter_logit is not None:
            prob = prob * filter_logit.sigmoid()
        return prob

    def _flatten(self, maps: Sequence[Tensor], channels: int) -> Tensor:
        """Per-level (N, K, H, W) -> (N, A, K), levels concatenated."""
        return torch.cat([
            m.permute(0, 2, 3, 1).reshape(m.size(0), -1, channels)
            for m in maps
        ], dim=1)

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
            bbox_preds (list[Tensor]): per level (N, 4, H, W) distances.
            filter_logits (list[Tensor | None]): per level (N, 1, H, W).
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            batch_img_metas (list[dict]): image metas.
            batch_gt_instances_ignore (list[InstanceData], optional): ignore
                regions (``bboxes``).

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
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * num_imgs

        logits = self._flatten(cls_scores, self.cls_out_channels)
        distances = self._flatten(bbox_preds, 4)
        filters = None if filter_logits[0] is None else self._flatten(
            filter_logits, 1)
        probs = self._probabilities(logits, filters)  # (N, A, C)
        boxes = self.bbox_coder.decode(
            priors[None, :, :2].expand(num_imgs, -1, -1), distances)

        labels, pos_gt_boxes, valid = self._get_targets(
            self.assigner, priors, probs, boxes, batch_gt_instances,
            batch_gt_instances_ignore, num_level_priors)
        pos = (labels >= 0) & (labels < self.num_classes)
        num_pos = max(
            reduce_mean(pos.sum().to(dtype=torch.float, device=device)),
            1.0)
        losses = dict(
            loss_cls=self.loss_cls(
                probs[valid], labels[valid], avg_factor=num_pos))
        if pos.any():
            losses['loss_bbox'] = self.loss_bbox(
                boxes[pos], pos_gt_boxes[pos], avg_factor=num_pos)
        else:
            losses['loss_bbox'] = boxes.sum() * 0

        if self.aux_loss is not None:
            aux_labels, _, aux_valid = self._get_targets(
                self.aux_assigner, priors, logits.sigmoid(), boxes,
                batch_gt_instances, batch_gt_instances_ignore,
                num_level_priors)
            aux_pos = (aux_labels >= 0) & (aux_labels < self.num_classes)
            num_aux = max(
                reduce_mean(aux_pos.sum().to(dtype=torch.float,
                                             device=device)), 1.0)
            losses['loss_aux'] = self.aux_loss(
                logits[aux_valid], aux_labels[aux_valid], avg_factor=num_aux)
        return losses

    @torch.no_grad()
    def _get_targets(self, assigner, priors: Tensor, probs: Tensor,
                     boxes: Tensor, batch_gt_instances: InstanceList,
                     batch_gt_instances_ignore: list,
                     num_level_priors: List[int]
                     ) -> Tuple[Tensor, Tensor, Tensor]:
        """Run ``assigner`` on every image.

        Returns:
            tuple: ``labels`` (N, A) (``num_classes`` = background),
            ``gt_boxes`` (N, A, 4) the assigned GT box of positives (zeros
            elsewhere), ``valid`` (N, A) False for ignore-assigned points.
        """
        num_imgs, num_priors = probs.shape[:2]
        labels = probs.new_full((num_imgs, num_priors),
                                self.num_classes,
                                dtype=torch.long)
        gt_boxes = boxes.new_zeros(num_imgs, num_priors, 4)
        valid = torch.ones_like(labels, dtype=torch.bool)
        for i in range(num_imgs):
            pred = InstanceData(
                priors=priors,
                scores=probs[i].detach(),
                bboxes=boxes[i].detach())
            result = assigner.assign(
                pred,
                batch_gt_instances[i],
                batch_gt_instances_ignore[i],
                num_level_priors=num_level_priors)
            pos = result.gt_inds > 0
            gt_idx = result.gt_inds[pos] - 1
            labels[i, pos] = batch_gt_instances[i].labels[gt_idx].long()
            gt_boxes[i, pos] = batch_gt_instances[i].bboxes[gt_idx].to(
                gt_boxes)
            valid[i] = result.gt_inds >= 0
        return labels, gt_boxes, valid

    def get_targets(self, points: List[Tensor],
                    batch_gt_instances: InstanceList):
        """Targets depend on predictions: see :meth:`loss_by_feat`."""
        raise NotImplementedError(
            'POTOHead assigns inside loss_by_feat (prediction-aware)')

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        filter_logits: Optional[List[Optional[Tensor]]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Decode detections; the filter logits play mmdet's
        ``score_factors`` slot (see :meth:`_predict_by_feat_single`)."""
        if filter_logits is not None and filter_logits[0] is None:
            filter_logits = None
        return super().predict_by_feat(
            cls_scores,
            bbox_preds,
            score_factors=filter_logits,
            batch_img_metas=batch_img_metas,
            cfg=cfg,
            rescale=rescale,
            with_nms=with_nms)

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Optional[Tensor]],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: ConfigDict,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """One image. Written here rather than inherited because mmdet
        selects the per-level top-k on ``sigmoid(cls)`` and multiplies the
        score factor afterwards, while DeFCN ranks the final probability
        ``sigmoid(cls) * sigmoid(filter)``."""
        cfg = ConfigDict(
            copy.deepcopy(self.test_cfg if cfg is None else cfg))
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0)
        mlvl_boxes, mlvl_priors_kept, mlvl_scores, mlvl_labels = \
            [], [], [], []
        for cls_score, bbox_pred, filter_logit, priors in zip(
                cls_score_list, bbox_pred_list, score_factor_list,
                mlvl_priors):
            cls_score = cls_score.permute(1, 2, 0).reshape(
                -1, self.cls_out_channels)
            if filter_logit is not None:
                filter_logit = filter_logit.permute(1, 2, 0).reshape(-1, 1)
            scores = self._probabilities(cls_score, filter_logit)
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            scores, labels, _, kept = filter_scores_and_topk(
                scores, score_thr, nms_pre,
                dict(bbox_pred=bbox_pred, priors=priors))
            mlvl_boxes.append(kept['bbox_pred'])
            mlvl_priors_kept.append(kept['priors'])
            mlvl_scores.append(scores)
            mlvl_labels.append(labels)
        results = InstanceData()
        results.bboxes = self.bbox_coder.decode(
            cat_boxes(mlvl_priors_kept),
            torch.cat(mlvl_boxes),
            max_shape=img_meta['img_shape'])
        results.scores = torch.cat(mlvl_scores)
        results.labels = torch.cat(mlvl_labels)
        return self._bbox_post_process(
            results=results,
            cfg=cfg,
            rescale=rescale,
            with_nms=with_nms,
            img_meta=img_meta)

    def _bbox_post_process(self,
                           results: InstanceData,
                           cfg: ConfigDict,
                           rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        """Rescale; NMS only when ``cfg.nms`` is a dict; keep the best
        ``cfg.max_per_img``."""
        use_nms = with_nms and cfg.get('nms', None) is not None
        results = super()._bbox_post_process(
            results, cfg, rescale=rescale, with_nms=use_nms,
            img_meta=img_meta)
        if not use_nms:
            order = results.scores.argsort(descending=True)
            results = results[order[:cfg.get('max_per_img', len(order))]]
        return results
