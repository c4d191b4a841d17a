"""CrowdHuman AP50 / mMR / recall (and Jaccard index) as pure functions.

The protocol is the CrowdDet one (``docs/algorithms.md`` §6), the one mmdet's
``CrowdHumanMetric`` implements. That metric loops in Python over every
(detection, GT) pair of every image and round-trips the predictions through a
JSON file, which takes minutes on the 4370 validation images; it also fails on
images without ground truth and returns NaN for an empty prediction set. The
functions here reproduce its numbers with vectorised numpy:

* :func:`load_crowdhuman_gt` reads a ``.odgt`` file into one compact
  :class:`ImageGT` (boxes and an ignore mask) per image;
* :func:`match_crowdhuman_image` matches one image's detections greedily in
  score order (TP / FP / dropped in an ignore region);
* :func:`accumulate_crowdhuman` turns all images' matches into AP50, mMR,
  recall and the miss-rate/FPPI curve;
* :func:`jaccard_index_image` and :func:`accumulate_jaccard_index` give
  mmdet's JI (opt-in);
* :func:`evaluate_crowdhuman` ties them together for a list of predictions.

Floating point follows mmdet's oracle exactly where it decides an outcome:
boxes are clipped in float64, overlaps are computed in float32 (as mmdet's
``bbox_overlaps``) and compared with the float32 threshold, scores are sorted
stably, so the same detections match the same GTs.
"""
import json
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mmengine.fileio import get_text
from mmengine.utils import ProgressBar
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from mmlla.datasets.crowdhuman_odgt_dataset import BODY_KEYS, PERSON_TAG

# Reference FPPI values of the log-average miss rate, rounded as in the
# CrowdDet toolkit and mmdet: 9 log-spaced points in [1e-2, 1] (P. Dollar's
# Caltech MR-2) or in [1e-4, 1] (S. Zhang's MR-4).
MR_REFERENCES = {
    '-2': (0.0100, 0.0178, 0.0316, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623,
           1.000),
    '-4': (0.0001, 0.0003, 0.0010, 0.0032, 0.0100, 0.0316, 0.1000, 0.3162,
           1.000),
}
# Score thresholds the Jaccard index is maximised over, computed as mmdet
# does (``1e-1 * i``, so 0.30000000000000004 rather than 0.3).
JI_SCORE_THRS = tuple(1e-1 * i for i in range(10))
# Denominator floor of mmdet's bbox_overlaps and of the JI ratio.
OVERLAP_EPS = 1e-6
JI_EPS = 1e-6
# Detection labels returned by match_crowdhuman_image.
TP, FP, DROPPED = 1, 0, -1


class ImageGT(NamedTuple):
    """The ground truth of one image.

    Attributes:
        boxes (np.ndarray): (G, 4) float64 ``xyxy`` boxes as annotated
            (not clipped: the image size comes with the predictions).
        ignore (np.ndarray): (G,) bool, True for ignore regions.
    """
    boxes: np.ndarray
    ignore: np.ndarray

    @property
    def num_gts(self) -> int:
        """Number of non-ignored boxes."""
        return int(self.ignore.size - np.count_nonzero(self.ignore))


def parse_crowdhuman_record(record: dict,
                            body: str = 'full',
                            where: str = '') -> ImageGT:
    """Read the boxes of one ``.odgt`` record.

    A box whose tag is not ``person`` or whose ``extra.ignore`` is non-zero
    is an ignore region; with ``body='head'`` so is a person whose
    ``head_attr.ignore`` is non-zero. Ignore regions that lack the evaluated
    box key (``mask`` boxes often carry only ``fbox``) use their ``fbox``.
    Every box is kept, degenerate ones included: each non-ignored GT counts
    in the recall denominator, as in mmdet.

    Args:
        record: One parsed line, ``{'ID': ..., 'gtboxes': [...]}``.
        body: ``'full'`` (``fbox``), ``'visible'`` (``vbox``) or ``'head'``
            (``hbox``).
        where: Location used in error messages (``file:line``).

    Returns:
        ImageGT: The image's boxes (G, 4) and ignore mask (G,).
    """
    key = BODY_KEYS[body]
    gtboxes = record.get('gtboxes')
    if not isinstance(gtboxes, list):
        raise ValueError(f'{where}: missing or non-list field "gtboxes"')
    boxes = np.empty((len(gtboxes), 4), dtype=np.float64)
    ignore = np.empty(len(gtboxes), dtype=bool)
    for k, ann in enumerate(gtboxes):
        extra = ann.get('extra') or {}
        ign = ann.get('tag') != PERSON_TAG or extra.get('ignore', 0) != 0
        if body == 'head' and not ign:
            ign = (ann.get('head_attr') or {}).get('ignore', 0) != 0
        box = ann.get(key)
        if box is None and ign:
            box = ann.get('fbox')
        if box is None or len(box) != 4:
            raise ValueError(f'{where}: box {k} has no valid "{key}" '
                             f'[x, y, w, h] (got {box!r})')
        boxes[k] = box
        ignore[k] = ign
    # xywh -> xyxy, in float64 like mmdet (x + w, no "- 1").
    boxes[:, 2:] += boxes[:, :2]
    return ImageGT(boxes, ignore)


def load_crowdhuman_gt(ann_file: str,
                       body: str = 'full',
                       backend_args: Optional[dict] = None
                       ) -> Dict[str, ImageGT]:
    """Load a CrowdHuman ``.odgt`` file into compact per-image arrays.

    Args:
        ann_file: Path (any mmengine file backend) of the ``.odgt`` file.
        body: Which box is evaluated: ``'full'``, ``'visible'`` or
            ``'head'``.
        backend_args: mmengine file backend arguments.

    Returns:
        dict[str, ImageGT]: Image ID (as a string) to its ground truth, in
        file order.
    """
    if body not in BODY_KEYS:
        raise ValueError(f'body must be one of {sorted(BODY_KEYS)}, '
                         f'got {body!r}')
    gts = {}
    text = get_text(ann_file, backend_args=backend_args)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f'{ann_file}:{lineno}'
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f'{where}: not valid JSON ({e})') from None
        if not isinstance(record, dict) or 'ID' not in record:
            raise ValueError(f'{where}: a record needs an "ID"')
        img_id = str(record['ID'])
        if img_id in gts:
            raise ValueError(f'{where}: image ID {img_id!r} appears twice')
        gts[img_id] = parse_crowdhuman_record(record, body, where)
    return gts


def clip_boxes(boxes: np.ndarray, img_shape: Tuple[int, int]) -> np.ndarray:
    """Clip boxes to the image as the CrowdDet toolkit does.

    ``x1`` into ``[0, W - 1]``, ``y1`` into ``[0, H - 1]``, ``x2`` into
    ``[0, W]``, ``y2`` into ``[0, H]`` (in this order of min/max), computed in
    float64 and returned in float32, the precision overlaps are computed in.

    Args:
        boxes: (N, 4) ``xyxy`` boxes.
        img_shape: ``(height, width)`` of the original image.

    Returns:
        np.ndarray: (N, 4) float32 clipped boxes.
    """
    h, w = img_shape
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty(b.shape, dtype=np.float64)
    out[:, 0] = np.minimum(np.maximum(b[:, 0], 0), w - 1)
    out[:, 1] = np.minimum(np.maximum(b[:, 1], 0), h - 1)
    out[:, 2] = np.maximum(np.minimum(b[:, 2], w), 0)
    out[:, 3] = np.maximum(np.minimum(b[:, 3], h), 0)
    return out.astype(np.float32)


def box_overlaps_f32(boxes1: np.ndarray,
                     boxes2: np.ndarray,
                     mode: str = 'iou') -> np.ndarray:
    """IoU or IoA (intersection over ``boxes1``'s area) of float32 boxes.

    The same float32 operations, in the same order, as
    ``mmdet.evaluation.functional.bbox_overlaps`` (no "+1", areas and unions
    floored at 1e-6), hence bit-identical values; written here because mmdet's
    version loops over rows in Python, which dominates the cost of evaluating
    thousands of crowded images.

    Args:
        boxes1: (N, 4) float32 ``xyxy`` boxes.
        boxes2: (M, 4) float32 ``xyxy`` boxes.
        mode: ``'iou'`` or ``'iof'`` (intersection over ``boxes1``'s area).

    Returns:
        np.ndarray: (N, M) float32 overlaps.
    """
    assert mode in ('iou', 'iof')
    b1 = np.asarray(boxes1, dtype=np.float32).reshape(-1, 4)
    b2 = np.asarray(boxes2, dtype=np.float32).reshape(-1, 4)
    if b1.shape[0] == 0 or b2.shape[0] == 0:
        return np.zeros((b1.shape[0], b2.shape[0]), dtype=np.float32)
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    iw = np.maximum(
        np.minimum(b1[:, None, 2], b2[None, :, 2]) -
        np.maximum(b1[:, None, 0], b2[None, :, 0]), 0)
    ih = np.maximum(
        np.minimum(b1[:, None, 3], b2[None, :, 3]) -
        np.maximum(b1[:, None, 1], b2[None, :, 1]), 0)
    overlap = iw * ih
    if mode == 'iou':
        area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
        union = area1[:, None] + area2[None, :] - overlap
    else:
        union = area1[:, None]
    return overlap / np.maximum(union, np.float32(OVERLAP_EPS))


def match_crowdhuman_image(det_boxes: np.ndarray,
                           det_scores: np.ndarray,
                           gt: ImageGT,
                           img_shape: Tuple[int, int],
                           iou_thr: float = 0.5
                           ) -> Tuple[np.ndarray, np.ndarray]:
    """Match one image's detections to its ground truth (Caltech rule).

    Detections are visited in descending score order (stable: equal scores
    keep their input order). Each takes the not-yet-matched non-ignored GT of
    highest IoU (the first one on ties) if that IoU is > ``iou_thr``;
    otherwise it is dropped if its IoA with some ignore region is
    > ``iou_thr``, else it is a false positive. Boxes are clipped first
    (:func:`clip_boxes`).

    The IoU matrix is computed once; only detections with some IoU above the
    threshold enter the greedy loop, which costs one ``argmax`` over a row of
    G values each.

    Args:
        det_boxes: (D, 4) ``xyxy`` detections.
        det_scores: (D,) scores.
        gt: The image's ground truth.
        img_shape: ``(height, width)`` of the original image.
        iou_thr: IoU (and IoA) threshold, strict.

    Returns:
        tuple[np.ndarray, np.ndarray]: The scores in descending order (D,)
        float64, and their labels (D,) int8: 1 TP, 0 FP, -1 dropped.
    """
    scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind='stable')
    scores = scores[order]
    labels = np.full(scores.shape, FP, dtype=np.int8)
    if scores.size == 0:
        return scores, labels
    dets = clip_boxes(np.asarray(det_boxes).reshape(-1, 4)[order], img_shape)
    gt_boxes = clip_boxes(gt.boxes, img_shape)
    thr = np.float32(iou_thr)

    pos = gt_boxes[~gt.ignore]
    if len(pos):
        iou = box_overlaps_f32(dets, pos, 'iou')
        cand = np.flatnonzero(iou.max(axis=1) > thr)
        if cand.size:
            iou = iou[cand]
            left = len(pos)
            for r, i in enumerate(cand.tolist()):
                row = iou[r]
                j = row.argmax()
                if row[j] > thr:
                    labels[i] = TP
                    # A matched GT is out of reach of later detections.
                    iou[r + 1:, j] = -1
                    left -= 1
                    if not left:
                        break

    ign = gt_boxes[gt.ignore]
    if len(ign):
        unmatched = np.flatnonzero(labels == FP)
        ioa = box_overlaps_f32(dets[unmatched], ign, 'iof')
        if ioa.size:
            labels[unmatched[ioa.max(axis=1) > thr]] = DROPPED
    return scores, labels


def accumulate_crowdhuman(scores: Sequence[np.ndarray],
                          labels: Sequence[np.ndarray],
                          num_gts: int,
                          num_imgs: int,
                          mr_range: str = '-2') -> dict:
    """AP50, mMR, recall and the curves from all images' matches.

    The kept detections (TP and FP) of all images are sorted by score into one
    list (stable: ties keep image order, then in-image order). At position k,
    ``recall = TP_k / num_gts``, ``precision = TP_k / k``,
    ``fppi = FP_k / num_imgs``.

    * AP50: trapezoid rule between consecutive (recall, precision) points of
      the list (the CrowdDet variant: the segment from recall 0 to the first
      point is not counted).
    * mMR: at each reference FPPI, the miss rate ``1 - recall`` at the first
      position whose FPPI is >= the reference (the last position if none);
      the geometric mean of these miss rates (0 if one of them is 0).
    * recall: the recall of the whole list.

    Without any kept detection AP50 and recall are 0 and every miss rate is
    1; without any non-ignored GT recall is taken as 0 (mMR 1, AP50 0).

    Args:
        scores: Per image, (D_i,) scores as returned by
            :func:`match_crowdhuman_image`.
        labels: Per image, (D_i,) labels (1 TP, 0 FP, -1 dropped).
        num_gts: Number of non-ignored GTs of all images.
        num_imgs: Number of images.
        mr_range: ``'-2'`` (FPPI 1e-2..1) or ``'-4'`` (1e-4..1).

    Returns:
        dict: ``AP50``, ``mMR``, ``recall`` (floats in [0, 1]); the curves
        over the sorted list, (K,) arrays ``scores``, ``recall_curve``,
        ``precision_curve``, ``fppi``, ``miss_rate``; ``mr_refs`` (9,) and
        the miss rates at them, ``mr_at_refs`` (9,).
    """
    if mr_range not in MR_REFERENCES:
        raise ValueError(f'mr_range must be one of {sorted(MR_REFERENCES)}, '
                         f'got {mr_range!r}')
    refs = np.asarray(MR_REFERENCES[mr_range], dtype=np.float64)
    all_scores = np.concatenate([np.asarray(s, np.float64) for s in scores]
                                + [np.zeros(0)])
    all_labels = np.concatenate([np.asarray(lb, np.int8) for lb in labels]
                                + [np.zeros(0, np.int8)])
    kept = all_labels != DROPPED
    all_scores, all_labels = all_scores[kept], all_labels[kept]
    order = np.argsort(-all_scores, kind='stable')
    is_tp = all_labels[order] == TP
    tp = np.cumsum(is_tp, dtype=np.float64)
    fp = np.cumsum(~is_tp, dtype=np.float64)
    if num_gts > 0:
        recall = tp / num_gts
    else:
        recall = np.zeros_like(tp)
    precision = tp / np.maximum(tp + fp, 1)
    fppi = fp / max(num_imgs, 1)
    miss_rate = 1.0 - recall

    ap = float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2))
    if len(fppi):
        idx = np.minimum(np.searchsorted(fppi, refs, side='left'),
                         len(fppi) - 1)
        mr_at_refs = miss_rate[idx]
    else:
        mr_at_refs = np.ones_like(refs)
    with np.errstate(divide='ignore'):
        mmr = float(np.exp(np.log(mr_at_refs).mean()))
    return dict(
        AP50=ap,
        mMR=mmr,
        recall=float(recall[-1]) if len(recall) else 0.0,
        scores=all_scores[order],
        recall_curve=recall,
        precision_curve=precision,
        fppi=fppi,
        miss_rate=miss_rate,
        mr_refs=refs,
        mr_at_refs=mr_at_refs)


def jaccard_index_image(det_boxes: np.ndarray,
                        det_scores: np.ndarray,
                        gt: ImageGT,
                        img_shape: Tuple[int, int],
                        iou_thr: float = 0.5,
                        score_thrs: Sequence[float] = JI_SCORE_THRS
                        ) -> np.ndarray:
    """mmdet's Jaccard-index terms of one image at several score thresholds.

    At each threshold the detections with score > thr are matched to the
    non-ignored GTs by a maximum-cardinality bipartite matching over pairs of
    IoU >= ``iou_thr`` (scipy's, called on the same matrix as mmdet so the
    same pairs are chosen); unmatched detections and unmatched GTs whose IoA
    with an ignore region is > ``iou_thr`` are discounted.

    Args:
        det_boxes: (D, 4) ``xyxy`` detections, in prediction order.
        det_scores: (D,) scores.
        gt: The image's ground truth.
        img_shape: ``(height, width)`` of the original image.
        iou_thr: Matching threshold.
        score_thrs: (T,) score thresholds.

    Returns:
        np.ndarray: (T, 3) int64, per threshold ``(k, m, n)``: matches,
        counted GTs, counted detections.
    """
    scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    dets = clip_boxes(np.asarray(det_boxes).reshape(-1, 4), img_shape)
    gt_boxes = clip_boxes(gt.boxes, img_shape)
    pos, ign = gt_boxes[~gt.ignore], gt_boxes[gt.ignore]
    thr = np.float32(iou_thr)
    iou = box_overlaps_f32(dets, pos, 'iou')
    det_in_ign = box_overlaps_f32(dets, ign, 'iof')
    det_in_ign = (det_in_ign.max(axis=1) > thr if len(ign) else np.zeros(
        len(dets), dtype=bool))
    gt_in_ign = box_overlaps_f32(pos, ign, 'iof')
    gt_in_ign = (gt_in_ign.max(axis=1) > thr if len(ign) else np.zeros(
        len(pos), dtype=bool))
    out = np.zeros((len(score_thrs), 3), dtype=np.int64)
    for t, score_thr in enumerate(score_thrs):
        keep = np.flatnonzero(scores > score_thr)
        det_matched = np.zeros(len(keep), dtype=bool)
        gt_matched = np.zeros(len(pos), dtype=bool)
        if len(keep) and len(pos):
            graph = iou[keep]
            graph[graph < thr] = 0
            match = maximum_bipartite_matching(
                csr_matrix(graph), perm_type='column')
            det_matched = match >= 0
            gt_matched[match[det_matched]] = True
        k = int(det_matched.sum())
        m = len(pos) - int(np.count_nonzero(gt_in_ign & ~gt_matched))
        n = len(keep) - int(np.count_nonzero(det_in_ign[keep] & ~det_matched))
        out[t] = (k, m, n)
    return out


def accumulate_jaccard_index(terms: Sequence[np.ndarray]) -> float:
    """The Jaccard index from per-image :func:`jaccard_index_image` terms.

    Per threshold: the mean over images with ``m > 0`` or ``n > 0`` of
    ``k / (m + n - k + 1e-6)``; the JI is the best threshold's mean (0 when no
    image counts).

    Args:
        terms: Per image, (T, 3) ``(k, m, n)``.

    Returns:
        float: The Jaccard index in [0, 1].
    """
    if not len(terms):
        return 0.0
    kmn = np.stack(terms).astype(np.float64)  # (N, T, 3)
    k, m, n = kmn[..., 0], kmn[..., 1], kmn[..., 2]
    ratio = k / (m + n - k + JI_EPS)
    counted = ((m != 0) | (n != 0)).sum(axis=0)
    means = np.where(counted > 0, ratio.sum(axis=0) / np.maximum(counted, 1),
                     0.0)
    return float(means.max())


class Prediction(NamedTuple):
    """One image's predictions, as kept by the metric.

    Attributes:
        img_id (str): The image ID of the annotation file.
        img_shape (tuple[int, int]): ``(height, width)`` of the image.
        bboxes (np.ndarray): (D, 4) ``xyxy`` boxes.
        scores (np.ndarray): (D,) scores.
    """
    img_id: str
    img_shape: Tuple[int, int]
    bboxes: np.ndarray
    scores: np.ndarray


def evaluate_crowdhuman(gts: Dict[str, ImageGT],
                        predictions: Sequence[Prediction],
                        iou_thr: float = 0.5,
                        mr_range: str = '-2',
                        with_ji: bool = False,
                        source: str = 'the annotation file',
                        show_progress: bool = False) -> dict:
    """Evaluate predictions of a set of images against their ground truth.

    The evaluated images are those with a prediction (possibly empty); they
    are put in annotation-file order first, so the result does not depend on
    the order predictions arrive in (ties between images are broken by file
    order, as in mmdet's metric, which requires that order).

    Args:
        gts: :func:`load_crowdhuman_gt` output.
        predictions: One :class:`Prediction` per image.
        iou_thr: IoU threshold.
        mr_range: ``'-2'`` or ``'-4'``.
        with_ji: Also compute the Jaccard index (``JI``).
        source: Name of the ground truth in error messages.
        show_progress: Show mmengine's progress bar while matching.

    Returns:
        dict: :func:`accumulate_crowdhuman`'s output, plus ``JI`` with
        ``with_ji``, ``num_imgs`` and ``num_gts``.

    Raises:
        ValueError: A prediction's image ID is not in ``gts``, or an image
            has two predictions.
    """
    file_index = {img_id: i for i, img_id in enumerate(gts)}
    indexed = {}
    for pred in predictions:
        idx = file_index.get(pred.img_id)
        if idx is None:
            raise ValueError(f'image ID {pred.img_id!r} of the predictions is '
                             f'not in {source}')
        if idx in indexed:
            raise ValueError(f'image ID {pred.img_id!r} has predictions '
                             'twice')
        indexed[idx] = pred
    scores: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    ji_terms: List[np.ndarray] = []
    num_gts = 0
    bar = ProgressBar(len(indexed)) if show_progress else None
    for idx in sorted(indexed):
        pred = indexed[idx]
        gt = gts[pred.img_id]
        s, lb = match_crowdhuman_image(pred.bboxes, pred.scores, gt,
                                       pred.img_shape, iou_thr)
        scores.append(s)
        labels.append(lb)
        num_gts += gt.num_gts
        if with_ji:
            ji_terms.append(
                jaccard_index_image(pred.bboxes, pred.scores, gt,
                                    pred.img_shape, iou_thr))
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    out = accumulate_crowdhuman(scores, labels, num_gts, len(indexed),
                                mr_range)
    if with_ji:
        out['JI'] = accumulate_jaccard_index(ji_terms)
    out['num_imgs'] = len(indexed)
    out['num_gts'] = num_gts
    return out


__all__ = [
    'MR_REFERENCES', 'JI_SCORE_THRS', 'ImageGT', 'Prediction',
    'parse_crowdhuman_record', 'load_crowdhuman_gt', 'clip_boxes',
    'box_overlaps_f32', 'match_crowdhuman_image', 'accumulate_crowdhuman',
    'jaccard_index_image', 'accumulate_jaccard_index', 'evaluate_crowdhuman'
]
