"""CrowdHuman AP50 / mMR / recall (and Jaccard index) as pure functions.

The protocol is the CrowdDet one (``docs/algorithms.md`` §6), the one mmdet's
``CrowdHumanMetric`` implements. That metric loops in Python over every
(detection, GT) pair of every image and round-trips the predictions through a
JSON file, which takes minutes on the 4370 validation images; it also fails on
images without ground truth and returns NaN for an empty prediction set. The
functions here reproduce its numbers with vectorised numpy:

* :func:`load_crowdhuman_gt` reads a ``.odgt`` file (with the dataset's strict
  reader, :func:`mmlla.datasets.crowdhuman_odgt_dataset.read_odgt`) into one
  compact :class:`ImageGT` (boxes and CrowdDet tags) per image; the
  evaluation ignore rule lives in :func:`eval_tag` only;
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
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mmengine.utils import ProgressBar
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from mmlla.datasets.crowdhuman_odgt_dataset import (BODY_KEYS, ODGTRecord,
                                                    odgt_box_xyxy,
                                                    odgt_ignore_flag,
                                                    read_odgt)

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
# CrowdDet's evaluation tags of a GT box (see eval_tag).
PERSON, BACKGROUND, IGNORE = 1, 0, -1
EVAL_CLASS_TAGS = {'person': PERSON, 'background': BACKGROUND}


def eval_tag(ann: dict, body: str = 'full') -> int:
    """The evaluation tag of one ``.odgt`` box: person, background or ignore.

    ``docs/algorithms.md`` §6: "Ignore regions: [...] in evaluation, a box
    whose tag is neither `person` nor `background`, or whose `extra.ignore`
    is non-zero (a `background` box is matched like an ignore region but
    counted as ground truth, as in CrowdDet's and mmdet's code)".

    As CrowdDet's and mmdet's ``load_gt_boxes``: ``person`` -> 1,
    ``background`` -> 0, any other tag -> -1, and -1 whenever
    ``extra.ignore`` is non-zero. In matching only tag 1 boxes can be
    matched; every other box (0 and -1) is an ignore region for the IoA test.
    The number of ground truths (recall denominator, mMR) counts the boxes of
    tag > -1, persons and background boxes alike.

    With ``body='head'`` a box whose ``head_attr.ignore`` is non-zero is -1
    too (mmdet's head evaluation; §6 is silent on head boxes).

    Args:
        ann: One entry of a record's ``gtboxes``.
        body: ``'full'``, ``'visible'`` or ``'head'``.

    Returns:
        int: 1 (person), 0 (background) or -1 (ignore).
    """
    tag = EVAL_CLASS_TAGS.get(ann['tag'], IGNORE)
    if odgt_ignore_flag(ann, 'extra'):
        tag = IGNORE
    if body == 'head' and odgt_ignore_flag(ann, 'head_attr'):
        tag = IGNORE
    return tag


class ImageGT(NamedTuple):
    """The ground truth of one image.

    Attributes:
        boxes (np.ndarray): (G, 4) float64 ``xyxy`` boxes as annotated
            (not clipped: the image size comes with the predictions).
        tags (np.ndarray): (G,) int8 :func:`eval_tag` values: 1 person,
            0 background, -1 ignore.
    """
    boxes: np.ndarray
    tags: np.ndarray

    @property
    def matchable(self) -> np.ndarray:
        """(G,) bool: the boxes a detection can match (persons)."""
        return self.tags == PERSON

    @property
    def regions(self) -> np.ndarray:
        """(G,) bool: the boxes of the IoA ignore test (the others)."""
        return self.tags != PERSON

    @property
    def num_gts(self) -> int:
        """Number of ground truths: boxes whose tag is not ignore."""
        return int(np.count_nonzero(self.tags != IGNORE))


def parse_crowdhuman_record(record: ODGTRecord,
                            body: str = 'full') -> ImageGT:
    """The evaluated boxes and :func:`eval_tag` tags of one ``.odgt`` record.

    Boxes of tag 0 or -1 (ignore regions in matching) that lack the
    evaluated box key (``mask`` boxes often carry only ``fbox``) use their
    ``fbox``. Every box is kept, degenerate ones included: each counted GT
    counts in the recall denominator, as in mmdet.

    Args:
        record: One record of :func:`read_odgt`.
        body: ``'full'`` (``fbox``), ``'visible'`` (``vbox``) or ``'head'``
            (``hbox``).

    Returns:
        ImageGT: The image's boxes (G, 4) and tags (G,).

    Raises:
        ODGTFormatError: A box is missing or malformed (file, line, image
            and box named).
    """
    key = BODY_KEYS[body]
    n = len(record.gtboxes)
    # xywh -> xyxy in float64 like mmdet (x + w, no "- 1").
    boxes = np.empty((n, 4), dtype=np.float64)
    tags = np.empty(n, dtype=np.int8)
    for k, ann in enumerate(record.gtboxes):
        tags[k] = eval_tag(ann, body)
        boxes[k] = odgt_box_xyxy(
            ann, key, f'{record.where}, box {k}',
            fbox_fallback=tags[k] != PERSON)
    return ImageGT(boxes, tags)


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

    Raises:
        ODGTFormatError: A malformed line (file and line named).
    """
    if body not in BODY_KEYS:
        raise ValueError(f'body must be one of {sorted(BODY_KEYS)}, '
                         f'got {body!r}')
    return {
        rec.img_id: parse_crowdhuman_record(rec, body)
        for rec in read_odgt(ann_file, backend_args)
    }


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
    keep their input order). Each takes the not-yet-matched person GT
    (tag 1) of highest IoU (the first one on ties) if that IoU is
    > ``iou_thr``; otherwise it is dropped if its IoA (over its own area)
    with some ignore region (a tag 0 ``background`` or tag -1 box, see
    :func:`eval_tag`) is > ``iou_thr``, else it is a false positive. Boxes
    are clipped first (:func:`clip_boxes`).

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

    pos = gt_boxes[gt.matchable]
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

    ign = gt_boxes[gt.regions]
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
    1; without any GT recall is taken as 0 (mMR 1, AP50 0).

    Args:
        scores: Per image, (D_i,) scores as returned by
            :func:`match_crowdhuman_image`.
        labels: Per image, (D_i,) labels (1 TP, 0 FP, -1 dropped).
        num_gts: Number of GTs of all images (:attr:`ImageGT.num_gts`).
        num_imgs: Number of images of the ground-truth file.
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
    GTs of tag 1 or 0 (mmdet's JI matches ``background`` boxes too; §6 does
    not define the JI) by a maximum-cardinality bipartite matching over
    pairs of IoU >= ``iou_thr`` (scipy's, called on the same matrix as mmdet
    so the same pairs are chosen); unmatched detections and unmatched GTs
    whose IoA with an ignore region (tag -1) is > ``iou_thr`` are
    discounted.

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
    counted = gt.tags != IGNORE
    pos, ign = gt_boxes[counted], gt_boxes[~counted]
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
    """Evaluate predictions against the ground truth of a whole file.

    Every image of ``gts`` (the ground-truth file) is evaluated, as in the
    CrowdDet toolkit (``docs/algorithms.md`` §6): an image without a
    prediction is an image without detections; it counts in the number of
    images (FPPI) and its GTs count in the recall denominator. Images are
    taken in annotation-file order, so the result does not depend on the
    order predictions arrive in (ties between images are broken by file
    order, as in mmdet's metric, which requires that order).

    The Jaccard index (not defined by §6) is mmdet's: over the images with
    a prediction only.

    Args:
        gts: :func:`load_crowdhuman_gt` output.
        predictions: At most one :class:`Prediction` per image.
        iou_thr: IoU threshold.
        mr_range: ``'-2'`` or ``'-4'``.
        with_ji: Also compute the Jaccard index (``JI``).
        source: Name of the ground truth in error messages.
        show_progress: Show mmengine's progress bar while matching.

    Returns:
        dict: :func:`accumulate_crowdhuman`'s output, plus ``JI`` with
        ``with_ji``, ``num_imgs`` (images of ``gts``), ``num_predicted``
        (images with a prediction) and ``num_gts``.

    Raises:
        ValueError: A prediction's image ID is not in ``gts``, or an image
            has two predictions.
    """
    indexed = {}
    for pred in predictions:
        if pred.img_id not in gts:
            raise ValueError(f'image ID {pred.img_id!r} of the predictions is '
                             f'not in {source}')
        if pred.img_id in indexed:
            raise ValueError(f'image ID {pred.img_id!r} has predictions '
                             'twice')
        indexed[pred.img_id] = pred
    scores: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    ji_terms: List[np.ndarray] = []
    num_gts = 0
    bar = ProgressBar(len(gts)) if show_progress else None
    for img_id, gt in gts.items():
        num_gts += gt.num_gts
        pred = indexed.get(img_id)
        if pred is not None:
            s, lb = match_crowdhuman_image(pred.bboxes, pred.scores, gt,
                                           pred.img_shape, iou_thr)
            scores.append(s)
            labels.append(lb)
            if with_ji:
                ji_terms.append(
                    jaccard_index_image(pred.bboxes, pred.scores, gt,
                                        pred.img_shape, iou_thr))
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    out = accumulate_crowdhuman(scores, labels, num_gts, len(gts), mr_range)
    if with_ji:
        out['JI'] = accumulate_jaccard_index(ji_terms)
    out['num_imgs'] = len(gts)
    out['num_predicted'] = len(indexed)
    out['num_gts'] = num_gts
    return out


__all__ = [
    'MR_REFERENCES', 'JI_SCORE_THRS', 'PERSON', 'BACKGROUND', 'IGNORE',
    'ImageGT', 'Prediction', 'eval_tag', 'parse_crowdhuman_record',
    'load_crowdhuman_gt', 'clip_boxes', 'box_overlaps_f32',
    'match_crowdhuman_image', 'accumulate_crowdhuman', 'jaccard_index_image',
    'accumulate_jaccard_index', 'evaluate_crowdhuman'
]
