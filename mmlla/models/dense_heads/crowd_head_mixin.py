"""What the mmlla dense heads share with each other and not with mmdet,
anchor-free (:class:`CrowdAnchorFreeHead`) and anchor-based
(``LLARetinaHead``) alike:

- the opening of ``loss_by_feat``: priors, per-level maps flattened,
  predictions decoded (:meth:`CrowdHeadMixin.flatten_predictions`);
- one target-building helper, :meth:`CrowdHeadMixin.get_targets`: the
  assigner runs image by image on the detached predictions;
- one normaliser idiom, :func:`avg_factor`;
- the reference implementations' inference (boxes clipped after NMS or
  after the final top-k, empty boxes dropped).

mmdet's ``BaseDenseHead`` clips the decoded boxes to the input image before
NMS and multiplies its score factor in after NMS-free top-k; the reference
code (cvpods) clips after NMS and ranks DeFCN's filtered probabilities
directly, so :meth:`CrowdHeadMixin._predict_by_feat_single` is written here
(docs/algorithms.md section 7, "inference boxes").
"""
import copy
from abc import ABCMeta, abstractmethod
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmcv.ops import batched_nms
from mmdet.models.utils import filter_scores_and_topk, multi_apply
from mmdet.structures.bbox import get_box_tensor, scale_boxes
from mmdet.utils import InstanceList, OptInstanceList, reduce_mean
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


def avg_factor(values: Tensor) -> Tensor:
    """A loss normaliser: ``values.sum()`` (a count for a bool mask),
    averaged over GPUs, at least 1. Every mmlla head divides its losses by
    one of these (positives, LLA's ``num_fg``, the centerness sum).

    Args:
        values (Tensor): a bool mask or float values, any shape.

    Returns:
        Tensor: a float scalar ``>= 1``.
    """
    return reduce_mean(values.sum().detach().float()).clamp(min=1.0)


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


class FlatPredictions(NamedTuple):
    """A batch's predictions with the levels flattened (the opening of
    ``loss_by_feat``); ``A`` priors per image over all levels.

    Attributes:
        priors (Tensor): (A, 4) priors shared by the images: points with
            their strides ``(x, y, stride_w, stride_h)`` or xyxy anchors.
        num_level_priors (list[int]): priors per level.
        logits (Tensor): (N, A, C) classification logits.
        bbox_preds (Tensor): (N, A, E) raw regression outputs (pixel
            distances or anchor deltas).
        bboxes (Tensor): (N, A, 4) decoded xyxy boxes, not clipped.
    """
    priors: Tensor
    num_level_priors: List[int]
    logits: Tensor
    bbox_preds: Tensor
    bboxes: Tensor


class CrowdHeadMixin(metaclass=ABCMeta):
    """Mixed into the mmlla heads, before their mmdet parent class.

    A head provides :meth:`loss_priors` and, where mmdet's
    ``bbox_coder.decode`` does not fit its priors, :meth:`decode_boxes`.

    Attributes a head sets:
        score_factor_mode (str): see ``SCORE_FACTOR_MODES``.
    """

    score_factor_mode = 'sqrt'

    @abstractmethod
    def loss_priors(self, featmap_sizes: List[torch.Size],
                    dtype: torch.dtype,
                    device: torch.device) -> List[Tensor]:
        """Per level the priors that training decodes and assigns, (H * W
        * K, 4) each (points with strides, or xyxy anchors)."""

    def decode_boxes(self, priors: Tensor, bbox_pred: Tensor) -> Tensor:
        """Decode ``bbox_pred`` (..., E) at ``priors`` (..., P), without
        clipping.

        Returns:
            Tensor: (..., 4) xyxy.
        """
        return get_box_tensor(self.bbox_coder.decode(priors, bbox_pred))

    def flatten_predictions(self, cls_scores: List[Tensor],
                            bbox_preds: List[Tensor]) -> FlatPredictions:
        """The opening of every ``loss_by_feat``: the priors of all levels,
        the per-level maps flattened and the boxes decoded.

        Args:
            cls_scores (list[Tensor]): per level (N, K * C, H, W) logits.
            bbox_preds (list[Tensor]): per level (N, K * E, H, W).

        Returns:
            FlatPredictions: priors, counts per level, flat logits, flat
            regression outputs and decoded boxes.
        """
        mlvl_priors = self.loss_priors(
            [s.shape[-2:] for s in cls_scores],
            dtype=bbox_preds[0].dtype,
            device=bbox_preds[0].device)
        priors = torch.cat(mlvl_priors)
        logits = flatten_levels(cls_scores, self.cls_out_channels)
        flat_preds = flatten_levels(bbox_preds, self.bbox_coder.encode_size)
        bboxes = self.decode_boxes(
            priors[None].expand(len(logits), -1, -1), flat_preds)
        return FlatPredictions(priors, [len(p) for p in mlvl_priors],
                               logits, flat_preds, bboxes)

    @torch.no_grad()
    def get_targets(self,
                    priors: Tensor,
                    scores: Optional[Tensor],
                    bboxes: Optional[Tensor],
                    batch_gt_instances: InstanceList,
                    batch_gt_instances_ignore: OptInstanceList = None,
                    assigner=None,
                    logits: Optional[Tensor] = None,
                    **kwargs) -> Tuple[Tensor, Tensor, Tensor]:
        """Run the assigner on every image, given the detached predictions,
        and turn its result into targets.

        A point is positive where ``labels < num_classes``, in every head.

        Args:
            priors (Tensor): (A, 4) priors shared by the images (points with
                strides, or anchors).
            scores (Tensor, optional): (N, A, C) classification
                probabilities the assigner ranks; None for an assigner that
                looks at the priors only.
            bboxes (Tensor, optional): (N, A, 4) decoded xyxy predictions;
                None likewise.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            batch_gt_instances_ignore (list[InstanceData], optional): ignore
                regions (``bboxes``) for the assigner; None where they take
                no part (DeFCN's rows).
            assigner (optional): the assigner; ``self.assigner`` when None.
            logits (Tensor, optional): (N, A, C) logits whose sigmoid is
                ``scores``, for the assigners that score losses on logits.
            **kwargs: passed to the assigner (e.g. ``num_level_priors``).

        Returns:
            tuple: ``labels`` (N, A) long, ``num_classes`` for background;
            ``bbox_targets`` (N, A, 4) the GT box of positives (zeros
            elsewhere); ``valid`` (N, A) bool, False for points given to an
            ignore region (LLA leaves them out of every loss).
        """
        num_imgs = len(batch_gt_instances)

        def per_image(x: Optional[Tensor]) -> Sequence[Optional[Tensor]]:
            return [None] * num_imgs if x is None else x.detach()

        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * num_imgs
        labels, bbox_targets, valid = multi_apply(
            self._get_targets_single,
            per_image(scores),
            per_image(bboxes),
            per_image(logits),
            batch_gt_instances,
            batch_gt_instances_ignore,
            priors=priors,
            assigner=self.assigner if assigner is None else assigner,
            **kwargs)
        return (torch.stack(labels), torch.stack(bbox_targets),
                torch.stack(valid))

    def _get_targets_single(self, scores: Optional[Tensor],
                            bboxes: Optional[Tensor],
                            logits: Optional[Tensor],
                            gt_instances: InstanceData,
                            gt_instances_ignore: Optional[InstanceData],
                            priors: Tensor, assigner,
                            **kwargs) -> Tuple[Tensor, Tensor, Tensor]:
        """One image of :meth:`get_targets`: ``scores`` and ``logits``
        (A, C), ``bboxes`` (A, 4), each None when not given.

        Returns:
            tuple: ``labels`` (A,), ``bbox_targets`` (A, 4), ``valid`` (A,).
        """
        given = dict(scores=scores, bboxes=bboxes, logits=logits)
        pred_instances = InstanceData(
            priors=priors,
            **{name: v for name, v in given.items() if v is not None})
        result = assigner.assign(pred_instances, gt_instances,
                                 gt_instances_ignore, **kwargs)
        like = priors if bboxes is None else bboxes
        num_priors = len(result.gt_inds)
        labels = result.gt_inds.new_full((num_priors, ), self.num_classes)
        bbox_targets = like.new_zeros(num_priors, 4)
        if len(gt_instances) > 0:
            pos = result.gt_inds > 0
            gt_idx = (result.gt_inds - 1).clamp(min=0)
            gt_boxes = get_box_tensor(gt_instances.bboxes).to(like)
            labels = torch.where(pos, gt_instances.labels.long()[gt_idx],
                                 labels)
            bbox_targets = torch.where(pos[:, None], gt_boxes[gt_idx],
                                       bbox_targets)
        return labels, bbox_targets, result.gt_inds >= 0

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
