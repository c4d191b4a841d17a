"""What the mmlla dense heads share with each other and not with mmdet: the
point offset as an option, the pixel-distance forward step, flattening of
per-level maps, and the reference implementations' inference (boxes clipped
after NMS or after the final top-k, empty boxes dropped).

mmdet's ``BaseDenseHead`` clips the decoded boxes to the input image before
NMS and multiplies its score factor in after NMS-free top-k; the reference
code (cvpods) clips after NMS and ranks DeFCN's filtered probabilities
directly, so :meth:`CrowdHeadMixin._predict_by_feat_single` is written here
(docs/algorithms.md, "inference boxes").
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import Scale
from mmdet.models.dense_heads import AnchorFreeHead
from mmcv.ops import batched_nms
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.models.utils import filter_scores_and_topk
from mmdet.structures.bbox import get_box_tensor, scale_boxes
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

# How a head's score factor (IoU / centerness / 3DMF filter logit) enters
# the score:
# - 'sqrt': the per-level top-k ranks sigmoid(cls) alone, then
#   score = sqrt(sigmoid(cls) * sigmoid(factor)) (LLA.FCOS, FCOS, ATSS);
# - 'product': score = sigmoid(cls) * sigmoid(factor) ranks the top-k
#   itself (DeFCN's 3DMF rows).
SCORE_FACTOR_MODES = ('sqrt', 'product')


def flatten_levels(maps: Sequence[Tensor], channels: int) -> Tensor:
    """Per-level ``(N, K * channels, H, W)`` maps to ``(N, A, channels)``,
    levels concatenated in order, row-major inside a level (the order of
    mmdet's prior generators)."""
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(m.size(0), -1, channels) for m in maps
    ], dim=1)


def clip_and_drop_empty(results: InstanceData,
                        shape: Tuple[int, int]) -> InstanceData:
    """Clip ``results.bboxes`` to ``[0, W] x [0, H]`` and drop the boxes
    left with zero width or height (detectron2's ``Boxes.clip`` and
    ``nonempty``).

    Args:
        results (InstanceData): ``bboxes`` (n, 4) xyxy and other fields.
        shape (tuple[int, int]): ``(H, W)``.

    Returns:
        InstanceData: the kept instances, boxes clipped.
    """
    height, width = shape[:2]
    boxes = get_box_tensor(results.bboxes)
    x = boxes[:, 0::2].clamp(min=0, max=width)
    y = boxes[:, 1::2].clamp(min=0, max=height)
    boxes = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=-1)
    results.bboxes = boxes
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return results if bool(keep.all()) else results[keep]


class CrowdHeadMixin:
    """Mixed into the mmlla heads, before their mmdet parent class.

    Attributes a head sets:
        score_factor_mode (str): see ``SCORE_FACTOR_MODES``.
    """

    score_factor_mode = 'sqrt'

    def set_prior_offset(self, offset: float) -> None:
        """Points at ``((col + offset) * s, (row + offset) * s)``: 0.5 for
        DeFCN's heads (mmdet's default), 0.0 for LLA.FCOS. mmdet's
        ``AnchorFreeHead`` builds its point generator with the default
        offset, so the head replaces it here; training and inference use
        the same generator."""
        self.prior_offset = float(offset)
        self.prior_generator = MlvlPointGenerator(
            self.strides, offset=self.prior_offset)

    def distance_forward_single(
            self, x: Tensor, scale: Scale,
            stride: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """AnchorFreeHead's towers, then the distances
        ``(l, t, r, b) = ReLU(scale * conv(x)) * stride`` in pixels, in
        training too (the assigners need decoded boxes).

        Returns:
            tuple: ``cls_score`` (N, C, H, W), ``bbox_pred`` (N, 4, H, W),
            ``cls_feat`` and ``reg_feat`` (N, feat_channels, H, W).
        """
        cls_score, bbox_pred, cls_feat, reg_feat = \
            AnchorFreeHead.forward_single(self, x)
        bbox_pred = scale(bbox_pred).float().clamp(min=0) * stride
        return cls_score, bbox_pred, cls_feat, reg_feat

    def decode_boxes(self, priors: Tensor, bbox_pred: Tensor) -> Tensor:
        """Decode ``bbox_pred`` at ``priors``, without clipping."""
        return get_box_tensor(self.bbox_coder.decode(priors, bbox_pred))

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Optional[Tensor]],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: Optional[ConfigDict],
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """One image: per level the top ``cfg.nms_pre`` scores above
        ``cfg.score_thr`` (see ``score_factor_mode``), decoding without
        clipping, then :meth:`_bbox_post_process`.

        Args:
            cls_score_list (list[Tensor]): per level (K * C, H, W) logits.
            bbox_pred_list (list[Tensor]): per level (K * 4, H, W).
            score_factor_list (list[Tensor | None]): per level (1, H, W)
                logits, or Nones.
            mlvl_priors (list[Tensor]): per level priors.
            img_meta (dict): ``img_shape``, ``ori_shape``, ``scale_factor``.
            cfg (ConfigDict, optional): test config (``self.test_cfg``).
            rescale (bool): boxes in the original image.
            with_nms (bool): apply ``cfg.nms`` when it is a dict.

        Returns:
            InstanceData: ``bboxes`` (n, 4), ``scores`` (n,), ``labels`` (n,).
        """
        cfg = ConfigDict(copy.deepcopy(self.test_cfg if cfg is None else cfg))
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0)
        boxes, scores_all, labels_all = [], [], []
        for cls_score, bbox_pred, factor, priors in zip(
                cls_score_list, bbox_pred_list, score_factor_list,
                mlvl_priors):
            scores = cls_score.permute(1, 2, 0).reshape(
                -1, self.cls_out_channels).sigmoid()
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(
                -1, self.bbox_coder.encode_size)
            if factor is not None:
                factor = factor.permute(1, 2, 0).reshape(-1).sigmoid()
                if self.score_factor_mode == 'product':
                    scores = scores * factor[:, None]
            # nms_pre <= 0: no cap (mmdet's helper would cut the last one)
            level_cap = nms_pre if nms_pre > 0 else scores.numel()
            scores, labels, keep, kept = filter_scores_and_topk(
                scores, score_thr, level_cap,
                dict(bbox_pred=bbox_pred, priors=priors))
            if factor is not None and self.score_factor_mode == 'sqrt':
                scores = (scores * factor[keep]).sqrt()
            boxes.append(
                self.decode_boxes(kept['priors'], kept['bbox_pred']))
            scores_all.append(scores)
            labels_all.append(labels)
        results = InstanceData(
            bboxes=torch.cat(boxes),
            scores=torch.cat(scores_all),
            labels=torch.cat(labels_all))
        return self._bbox_post_process(
            results, cfg, rescale=rescale, with_nms=with_nms,
            img_meta=img_meta)

    def _bbox_post_process(self,
                           results: InstanceData,
                           cfg: ConfigDict,
                           rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        """Class-aware NMS when ``with_nms`` and ``cfg.nms`` is a dict, else
        the scores' ranking; the best ``cfg.max_per_img``; then rescaling
        to the original image (``rescale``), clipping to it and dropping
        empty boxes, in the order of the reference code (cvpods'
        ``detector_postprocess``).

        Args:
            results (InstanceData): ``bboxes``, ``scores``, ``labels`` in
                input-image pixels.
            cfg (ConfigDict): ``nms`` (dict or None), ``max_per_img``.
            rescale (bool): rescale to ``img_meta['ori_shape']``.
            with_nms (bool): allow NMS.
            img_meta (dict): image meta.

        Returns:
            InstanceData: at most ``cfg.max_per_img`` detections, by
            descending score.
        """
        max_per_img = cfg.get('max_per_img', len(results))
        nms_cfg = cfg.get('nms', None)
        if with_nms and nms_cfg is not None and len(results) > 0:
            dets, keep = batched_nms(results.bboxes, results.scores,
                                     results.labels, nms_cfg)
            results = results[keep]
            results.scores = dets[:, -1]
        else:
            order = results.scores.sort(descending=True, stable=True)[1]
            results = results[order]
        results = results[:max_per_img]
        shape = img_meta['img_shape']
        if rescale:
            scale_factor = [1 / s for s in img_meta['scale_factor']]
            results.bboxes = scale_boxes(results.bboxes, scale_factor)
            shape = img_meta['ori_shape']
        return clip_and_drop_empty(results, shape)
