"""The whole detector, post-processing included, as one exportable module.

:class:`End2EndDetector` runs a single-stage detector's backbone, neck and
head, then the head's own inference rules (``CrowdHeadMixin``'s
``_predict_by_feat_single`` and ``_bbox_post_process``) rewritten with
fixed-size tensor operations that ``torch.onnx`` can trace for a whole
batch: per-level top-k instead of boolean indexing, validity masks instead
of dropping rows, a traced size instead of a Python ``min`` where a
dynamic-shape graph needs it. The heads themselves are left as they are:
their per-image loops over ``InstanceData`` cannot be traced into a graph
that serves any batch and image size.

The rules reproduced, from each head's ``test_cfg``:

1. per level, ``sigmoid(cls)`` (times ``sigmoid(filter)`` for POTO's 3DMF,
   ``score_factor_mode='product'``), its best ``nms_pre`` entries
   (``nms_pre <= 0``: all) that score ``> score_thr``;
2. ``'sqrt'`` heads (LLA.FCOS's IoU, FCOS/ATSS's centerness): the score
   becomes ``sqrt(sigmoid(cls) * sigmoid(factor))`` after that top-k;
3. boxes decoded by the head's own ``decode_boxes`` (not clipped);
4. ``test_cfg.nms`` a dict: class-aware NMS (one ONNX
   ``NonMaxSuppression`` node, see :mod:`.onnx_nms`); None: no NMS at all
   (POTO and its 3DMF / Aux rows);
5. the best ``max_per_img`` by score, then the boxes clipped to the input
   tensor ``[0, W] x [0, H]`` and those left empty dropped.

Boxes come out in the input tensor's pixels: the caller divides them by the
resize factor and clips to the original image (``demo/onnx_demo.py``), as
``_bbox_post_process`` does with ``rescale=True``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.detectors import SingleStageDetector
from torch import Tensor

from ..models.dense_heads import DeFCNFCOSHead, LLAHead, POTOHead
from .onnx_nms import batched_nms_keep

# The heads whose inference :class:`End2EndDetector` reproduces (exact types:
# a subclass may change the rules).
EXPORTABLE_HEADS = (POTOHead, LLAHead, DeFCNFCOSHead)
# The NMS config keys the graph implements (mmcv's batched_nms semantics).
EXPORTABLE_NMS_KEYS = ('type', 'iou_threshold', 'class_agnostic', 'split_thr')
# Rows of ``dets`` / ``labels`` past ``num_dets`` (fewer detections than
# max_per_img): zeros, label -1.
PADDING_LABEL = -1
# Ranking key of a row that is no detection (every real score is >= 0).
INVALID_KEY = -1.0

Size = Union[int, Tensor]


class NotExportableError(ValueError):
    """A model whose inference :class:`End2EndDetector` cannot reproduce."""


def check_exportable(model: nn.Module) -> None:
    """Refuse a model whose inference the graph would not reproduce.

    Raises:
        NotExportableError: naming the part and why.
    """
    if not isinstance(model, SingleStageDetector):
        raise NotExportableError(
            f'{type(model).__name__} is not a single-stage detector: the ONNX '
            'export covers backbone + neck + one dense head (POTO, LLA.FCOS, '
            'FCOS, ATSS)')
    head = model.bbox_head
    if type(head) not in EXPORTABLE_HEADS:
        names = ', '.join(h.__name__ for h in EXPORTABLE_HEADS)
        raise NotExportableError(
            f'bbox_head {type(head).__name__} cannot be exported: its '
            'post-processing (prior/anchor decoding, score rule, NMS) is not '
            f'reimplemented for the graph; exportable heads: {names}. '
            '(mmdet\'s own heads have no export path in mmdet 3.x, and '
            'mmdeploy 1.3.1 does not run with this torch: README, "Deploy")')
    cfg = head.test_cfg
    if cfg is None:
        raise NotExportableError(
            f'{type(head).__name__} has no test_cfg: nothing says how to '
            'post-process (nms_pre, score_thr, nms, max_per_img)')
    nms_cfg = cfg.get('nms', None)
    if nms_cfg is not None:
        if nms_cfg.get('type', 'nms') != 'nms':
            raise NotExportableError(
                f'test_cfg.nms.type={nms_cfg.get("type")!r} cannot be '
                'exported: ONNX has only hard NMS (NonMaxSuppression); use '
                "type='nms'")
        extra = sorted(set(nms_cfg) - set(EXPORTABLE_NMS_KEYS))
        if extra:
            raise NotExportableError(
                f'test_cfg.nms keys {extra} cannot be exported (ONNX '
                'NonMaxSuppression takes iou_threshold only; supported keys: '
                f'{", ".join(EXPORTABLE_NMS_KEYS)})')
        if 'iou_threshold' not in nms_cfg:
            raise NotExportableError('test_cfg.nms has no iou_threshold')
    if getattr(head.prior_generator, 'num_base_priors', [1])[0] != 1:
        raise NotExportableError(
            f'{type(head).__name__} has several priors per location; the '
            'graph handles one point per location')


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export()


def _size(x: Tensor, dim: int) -> Size:
    """``x.shape[dim]``: an int in eager mode, a traced scalar tensor while
    exporting (a dynamic-shape graph computes it from its input)."""
    if _exporting():
        return torch._shape_as_tensor(x)[dim]
    return x.shape[dim]


def _at_most(size: Size, cap: int) -> Size:
    """``min(size, cap)`` for an int or a traced size."""
    if isinstance(size, Tensor):
        return torch.clamp(size, max=cap)
    return min(size, cap)


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x[n, index[n, k], :]`` for (N, A, D) ``x`` and (N, K) ``index``."""
    return x.gather(1, index[..., None].expand(-1, -1, x.size(-1)))


class End2EndDetector(nn.Module):
    """A single-stage detector from the preprocessed image to its final
    detections, for ``torch.onnx.export``.

    Args:
        detector (SingleStageDetector): a built detector whose head is in
            ``EXPORTABLE_HEADS`` (weights loaded, eval mode is set here).

    Raises:
        NotExportableError: see :func:`check_exportable`.
    """

    def __init__(self, detector: SingleStageDetector) -> None:
        super().__init__()
        check_exportable(detector)
        self.detector = detector.eval()
        self.head = detector.bbox_head
        cfg = self.head.test_cfg
        self.nms_pre = int(cfg.get('nms_pre', -1))
        self.score_thr = float(cfg.get('score_thr', 0))
        max_per_img = cfg.get('max_per_img', None)
        self.max_per_img = None if max_per_img is None else int(max_per_img)
        self.nms_cfg = cfg.get('nms', None)
        self.product = self.head.score_factor_mode == 'product'
        # POTOHead decodes from priors with strides (its anchor mode needs
        # them); the others from (x, y) points.
        self.with_stride = isinstance(self.head, POTOHead)
        # the wrapper's own mode too: torch.onnx.export restores the mode
        # it found on the wrapper, recursively, which would otherwise put
        # the detector's BN layers in training mode after the export
        self.eval()

    @property
    def with_nms(self) -> bool:
        return self.nms_cfg is not None

    def describe(self) -> Dict[str, str]:
        """The post-processing of the graph, as ONNX metadata strings."""
        score = ('sigmoid(cls) * sigmoid(factor)' if self.product else
                 'sqrt(sigmoid(cls) * sigmoid(factor))')
        if isinstance(self.head, POTOHead) and not self.head.with_3dmf:
            score = 'sigmoid(cls)'
        nms = 'none' if self.nms_cfg is None else (
            f'NonMaxSuppression iou_threshold='
            f'{float(self.nms_cfg["iou_threshold"]):g}' +
            (' class-agnostic' if self.nms_cfg.get('class_agnostic') else
             ' class-aware'))
        return dict(
            head=type(self.head).__name__,
            score=score,
            nms_pre=str(self.nms_pre),
            score_thr=f'{self.score_thr:g}',
            nms=nms,
            max_per_img=str(self.max_per_img),
            classes=str(self.head.num_classes))

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Detect.

        Args:
            inputs (Tensor): (N, 3, H, W), the data preprocessor's output
                (normalised, padded).

        Returns:
            tuple: ``dets`` (N, K, 5) float ``x1, y1, x2, y2, score`` in
            input pixels, by descending score; ``labels`` (N, K) int64;
            ``num_dets`` (N,) int64, the detections of each image (rows past
            it are zeros with label -1). ``K = min(max_per_img,
            candidates)``.
        """
        feats = self.detector.extract_feat(inputs)
        outs = self.head(feats)
        factors = outs[2] if len(outs) > 2 else [None] * len(outs[0])
        return self.post_process(outs[0], outs[1], factors,
                                 (_size(inputs, 2), _size(inputs, 3)))

    def level_priors(self, featmap: Tensor, level: int) -> Tensor:
        """mmdet's ``MlvlPointGenerator.single_level_grid_priors`` with a
        traced feature-map size: ``((col + offset) * s, (row + offset) *
        s)`` row-major, plus the strides for POTOHead.

        Returns:
            Tensor: (H * W, 2) or (H * W, 4).
        """
        gen = self.head.prior_generator
        stride_w, stride_h = gen.strides[level]
        h, w = _size(featmap, 2), _size(featmap, 3)
        device = featmap.device
        shift_x = ((torch.arange(0, w, device=device) + gen.offset) *
                   stride_w).to(featmap.dtype)
        shift_y = ((torch.arange(0, h, device=device) + gen.offset) *
                   stride_h).to(featmap.dtype)
        yy, xx = torch.meshgrid(shift_y, shift_x, indexing='ij')
        xx, yy = xx.reshape(-1), yy.reshape(-1)
        if not self.with_stride:
            return torch.stack([xx, yy], dim=-1)
        return torch.stack(
            [xx, yy,
             torch.full_like(xx, stride_w),
             torch.full_like(xx, stride_h)], dim=-1)

    def level_candidates(
            self, cls_score: Tensor, bbox_pred: Tensor,
            factor: Optional[Tensor], priors: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """One level: the best ``nms_pre`` scores of every image.

        Args:
            cls_score (Tensor): (N, C, H, W) logits.
            bbox_pred (Tensor): (N, 4, H, W).
            factor (Tensor, optional): (N, 1, H, W) logits.
            priors (Tensor): (H * W, 2 | 4).

        Returns:
            tuple: ``boxes`` (N, k, 4) decoded, ``scores`` (N, k),
            ``labels`` (N, k) int64, ``valid`` (N, k) bool (score above
            ``score_thr``), by descending ranking score.
        """
        num_classes = self.head.cls_out_channels
        scores = cls_score.permute(0, 2, 3, 1).flatten(1, 2).sigmoid()
        deltas = bbox_pred.permute(0, 2, 3, 1).flatten(1, 2)
        if factor is not None:
            factor = factor.permute(0, 2, 3, 1).flatten(1).sigmoid()
            if self.product:
                scores = scores * factor[..., None]
        scores = scores.flatten(1)  # (N, A * C), anchor-major
        num = _size(scores, 1)
        k = _at_most(num, self.nms_pre) if self.nms_pre > 0 else num
        top_scores, top_idx = scores.topk(k, dim=1)
        anchor_idx = torch.div(top_idx, num_classes, rounding_mode='floor')
        labels = top_idx % num_classes
        valid = top_scores > self.score_thr
        if factor is not None and not self.product:
            top_scores = (top_scores * factor.gather(1, anchor_idx)).sqrt()
        boxes = self.head.decode_boxes(priors[anchor_idx],
                                       _gather_rows(deltas, anchor_idx))
        return boxes, top_scores, labels, valid

    def post_process(self, cls_scores: Sequence[Tensor],
                     bbox_preds: Sequence[Tensor],
                     factors: Sequence[Optional[Tensor]],
                     input_hw: Tuple[Size, Size]
                     ) -> Tuple[Tensor, Tensor, Tensor]:
        """The head's inference on its per-level outputs (see the module
        docstring); returns what :meth:`forward` does."""
        levels: List[Tuple[Tensor, Tensor, Tensor, Tensor]] = []
        for level, (cls, bbox, factor) in enumerate(
                zip(cls_scores, bbox_preds, factors)):
            levels.append(
                self.level_candidates(cls, bbox, factor,
                                      self.level_priors(cls, level)))
        boxes, scores, labels, valid = (torch.cat(x, dim=1)
                                        for x in zip(*levels))
        keep = valid
        if self.with_nms:
            keep = batched_nms_keep(
                boxes, scores, labels, valid,
                self.nms_cfg['iou_threshold'],
                bool(self.nms_cfg.get('class_agnostic', False)))
        invalid = scores.new_full((), INVALID_KEY)
        num = _size(scores, 1)
        k = num if self.max_per_img is None else _at_most(
            num, self.max_per_img)
        # the best max_per_img kept candidates (stable for ties, as the
        # heads' sort)
        key, order = torch.where(keep, scores, invalid).topk(k, dim=1)
        boxes = _gather_rows(boxes, order)
        labels = labels.gather(1, order)
        # clip to the input, drop the boxes left empty (after the top-k, as
        # the heads do)
        height, width = (torch.as_tensor(s, dtype=boxes.dtype)
                         for s in input_hw)
        x = torch.minimum(boxes[..., 0::2].clamp(min=0), width)
        y = torch.minimum(boxes[..., 1::2].clamp(min=0), height)
        boxes = torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]],
                            dim=-1)
        found = (key > INVALID_KEY) & (boxes[..., 2] > boxes[..., 0]) & (
            boxes[..., 3] > boxes[..., 1])
        # the detections first, still by descending score
        key, order = torch.where(found, key, invalid).topk(k, dim=1)
        found = found.gather(1, order)
        boxes = _gather_rows(boxes, order)
        labels = labels.gather(1, order)
        dets = torch.cat([boxes, key[..., None]], dim=-1)
        dets = torch.where(found[..., None], dets, dets.new_zeros(()))
        labels = torch.where(found, labels, labels.new_full((),
                                                            PADDING_LABEL))
        return dets, labels, found.sum(dim=1)
