"""CrowdHuman AP50 / mMR / recall (and Jaccard index) as pure functions.

The protocol is the CrowdDet one (``docs/algorithms.md`` section 6), the one
mmdet's ``CrowdHumanMetric`` implements. That metric loops in Python over
every (detection, GT) pair of every image and round-trips the predictions through a
JSON file, which took 94 s for AP and MR on a validation-sized synthetic set
(``docs/evaluation.md``, a loaded 2-core machine); it also fails on images
without ground truth and returns NaN for an empty prediction set. The
functions here reproduce its numbers with vectorised numpy:

* :func:`load_crowdhuman_gt` reads a ``.odgt`` file (with the strict reader
  of the format module, :func:`mmlla.datasets.formats.odgt.read_odgt`, which
  the dataset uses too) into one compact :class:`ImageGT` (boxes and
  CrowdDet tags) per image; the tags are the evaluation ignore rule of the
  format module, :func:`mmlla.datasets.formats.odgt.eval_tag`;
* :func:`check_prediction` refuses predictions that cannot be scored
  (non-finite values, boxes that are not 4 numbers, box/score count
  mismatches, impossible image sizes);
* :func:`match_crowdhuman_image` matches one image's detections greedily in
  score order (TP / FP / dropped in an ignore region);
* :func:`accumulate_crowdhuman` turns all images' matches into AP50, mMR,
  recall and the miss-rate/FPPI curve;
* :func:`jaccard_index_image` and :func:`accumulate_jaccard_index` give
  CrowdDet's Jaccard index (``compute_JI.py``: maximum-weight matching;
  opt-in);
* :func:`evaluate_crowdhuman` ties them together for a list of predictions.

AP50 / mMR follow mmdet's oracle exactly where floating point decides an
outcome: boxes are clipped in float64, overlaps are computed in float32 (as
mmdet's ``bbox_overlaps``) and compared with the float32 threshold, scores
are sorted stably, so the same detections match the same GTs. The JI follows
CrowdDet's ``JI_tools.py`` (float64 overlaps, its formulas).

Memory does not grow with detections x GTs: overlaps are computed for blocks
of detections of at most :data:`CHUNK_ELEMS` (detection, box) pairs, with
the same results as one block (the greedy matching carries the matched GTs
from block to block; the JI keeps only the pairs above the threshold).
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mmengine.utils import ProgressBar
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from mmlla.datasets.formats.odgt import (BODY_KEYS, IGNORE, PERSON,
                                         ODGTRecord, check_body, eval_tag,
                                         odgt_box_xyxy, read_odgt)

# Reference FPPI values of the log-average miss rate, rounded as in the
# CrowdDet toolkit and mmdet: 9 log-spaced points in [1e-2, 1] (P. Dollar's
# Caltech MR-2) or in [1e-4, 1] (S. Zhang's MR-4).
MR_REFERENCES = {
    '-2': (0.0100, 0.0178, 0.0316, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623,
           1.000),
    '-4': (0.0001, 0.0003, 0.0010, 0.0032, 0.0100, 0.0316, 0.1000, 0.3162,
           1.000),
}
# Score thresholds the Jaccard index is maximised over, computed as
# CrowdDet's compute_JI.py (and mmdet) do: ``1e-1 * i``, so
# 0.30000000000000004 rather than 0.3.
JI_SCORE_THRS = tuple(1e-1 * i for i in range(10))
# Denominator floor of mmdet's bbox_overlaps, the eps CrowdDet's JI_tools.py
# adds to its IoU and IoA denominators, and the eps of the JI ratio.
OVERLAP_EPS = 1e-6
CROWDDET_EPS = 1e-6
JI_EPS = 1e-6
# At most this many (detection, box) pairs per block of overlaps: 2M pairs
# are 8 MiB in float32, 16 MiB in float64, a few such arrays live at once.
CHUNK_ELEMS = 1 << 21
# The JI's pair lists hold a dozen 8-byte values per pair: fewer per block.
PAIR_CHUNK_ELEMS = CHUNK_ELEMS // 4
# JI matchings of at most this many (detections x GTs) cells are solved on a
# dense matrix (fast for small problems), larger ones on the sparse graph.
DENSE_MATCHING_CELLS = 1 << 16
# Detection labels returned by match_crowdhuman_image.
TP, FP, DROPPED = 1, 0, -1


class ImageGT(NamedTuple):
    """The ground truth of one image.

    Attributes:
        boxes (np.ndarray): (G, 4) float64 ``xyxy`` boxes as annotated
            (not clipped: the image size comes with the predictions).
        tags (np.ndarray): (G,) int8
            :func:`~mmlla.datasets.formats.odgt.eval_tag` values: 1 person,
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
    """The evaluated boxes and evaluation tags of one ``.odgt`` record.

    Tags are :func:`~mmlla.datasets.formats.odgt.eval_tag` (the evaluation
    ignore rule of the format module).

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
    check_body(body)
    return {
        rec.img_id: parse_crowdhuman_record(rec, body)
        for rec in read_odgt(ann_file, backend_args)
    }


def clip_boxes(boxes: np.ndarray,
               img_shape: Tuple[int, int],
               dtype=np.float32) -> np.ndarray:
    """Clip boxes to the image as the CrowdDet toolkit does.

    ``x1`` into ``[0, W - 1]``, ``y1`` into ``[0, H - 1]``, ``x2`` into
    ``[0, W]``, ``y2`` into ``[0, H]`` (in this order of min/max), computed in
    float64 (CrowdDet's ``clip_boundary``) and returned in ``dtype``: float32
    for AP/mMR, the precision mmdet computes their overlaps in, float64 for
    the JI, as CrowdDet's ``compute_JI.py``.

    Args:
        boxes: (N, 4) ``xyxy`` boxes.
        img_shape: ``(height, width)`` of the original image.
        dtype: Output dtype. Defaults to float32.

    Returns:
        np.ndarray: (N, 4) clipped boxes.
    """
    h, w = img_shape
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty(b.shape, dtype=np.float64)
    out[:, 0] = np.minimum(np.maximum(b[:, 0], 0), w - 1)
    out[:, 1] = np.minimum(np.maximum(b[:, 1], 0), h - 1)
    out[:, 2] = np.maximum(np.minimum(b[:, 2], w), 0)
    out[:, 3] = np.maximum(np.minimum(b[:, 3], h), 0)
    return out.astype(dtype, copy=False)


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


def crowddet_overlaps(boxes1: np.ndarray,
                      boxes2: np.ndarray,
                      mode: str = 'iou') -> np.ndarray:
    """IoU or IoA of float64 boxes, as CrowdDet's JI toolkit computes them.

    ``JI_tools.compute_iou_matrix``: ``inter / (area1 + area2 - inter +
    1e-6)`` with signed areas; ``compute_ioa_matrix``: ``inter / (area1 +
    1e-6)`` with ``area1 = max(w1, 0) * max(h1, 0)``; ``inter`` is
    ``max(0, iw) * max(0, ih)``. Same float64 operations in the same order,
    hence the same values.

    Args:
        boxes1: (N, 4) ``xyxy`` boxes.
        boxes2: (M, 4) ``xyxy`` boxes.
        mode: ``'iou'`` or ``'iof'`` (intersection over ``boxes1``'s area).

    Returns:
        np.ndarray: (N, M) float64 overlaps.
    """
    assert mode in ('iou', 'iof')
    b1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    if b1.shape[0] == 0 or b2.shape[0] == 0:
        return np.zeros((b1.shape[0], b2.shape[0]), dtype=np.float64)
    iw = (np.minimum(b1[:, None, 2], b2[None, :, 2]) -
          np.maximum(b1[:, None, 0], b2[None, :, 0]))
    ih = (np.minimum(b1[:, None, 3], b2[None, :, 3]) -
          np.maximum(b1[:, None, 1], b2[None, :, 1]))
    inter = np.maximum(0, iw) * np.maximum(0, ih)
    del iw, ih
    with np.errstate(divide='ignore', invalid='ignore'):
        if mode == 'iou':
            area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
            area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
            return inter / (area1[:, None] + area2[None, :] - inter +
                            CROWDDET_EPS)
        area1 = (np.maximum(b1[:, 2] - b1[:, 0], 0) *
                 np.maximum(b1[:, 3] - b1[:, 1], 0))
        return inter / (area1[:, None] + CROWDDET_EPS)


def chunk_rows_for(num_cols: int, chunk_rows: Optional[int] = None) -> int:
    """Rows (detections) per block of a (rows x ``num_cols``) overlap matrix.

    Args:
        num_cols: Number of boxes each detection is compared with.
        chunk_rows: Force this many rows per block (tests); None: as many
            as fit in :data:`CHUNK_ELEMS` pairs.

    Returns:
        int: At least 1.
    """
    if chunk_rows is not None:
        if chunk_rows < 1:
            raise ValueError(f'chunk_rows must be >= 1, got {chunk_rows}')
        return int(chunk_rows)
    return max(1, CHUNK_ELEMS // max(int(num_cols), 1))


def _any_overlap_above(boxes: np.ndarray, regions: np.ndarray, thr,
                       overlaps, chunk_rows: Optional[int]) -> np.ndarray:
    """(N,) bool: whether a box's IoA with some region is > ``thr``."""
    out = np.zeros(len(boxes), dtype=bool)
    if len(boxes) == 0 or len(regions) == 0:
        return out
    step = chunk_rows_for(len(regions), chunk_rows)
    for start in range(0, len(boxes), step):
        ioa = overlaps(boxes[start:start + step], regions, 'iof')
        out[start:start + step] = ioa.max(axis=1) > thr
    return out


def match_crowdhuman_image(det_boxes: np.ndarray,
                           det_scores: np.ndarray,
                           gt: ImageGT,
                           img_shape: Tuple[int, int],
                           iou_thr: float = 0.5,
                           chunk_rows: Optional[int] = None
                           ) -> Tuple[np.ndarray, np.ndarray]:
    """Match one image's detections to its ground truth (Caltech rule).

    Detections are visited in descending score order (stable: equal scores
    keep their input order). Each takes the not-yet-matched person GT
    (tag 1) of highest IoU (the first one on ties) if that IoU is
    > ``iou_thr``; otherwise it is dropped if its IoA (over its own area)
    with some ignore region (a tag 0 ``background`` or tag -1 box, see
    :func:`eval_tag`) is > ``iou_thr``, else it is a false positive. Boxes
    are clipped first (:func:`clip_boxes`).

    The IoU matrix is computed for blocks of detections in score order
    (:func:`chunk_rows_for`: at most :data:`CHUNK_ELEMS` pairs per block),
    so memory does not grow with detections x GTs; the GTs matched by
    earlier blocks are out of reach in later ones, which gives the same
    labels as one block. Only detections with some IoU above the threshold
    enter the greedy loop, which costs one ``argmax`` over a row of G
    values each; once every person is matched no more IoU is computed.

    Args:
        det_boxes: (D, 4) ``xyxy`` detections.
        det_scores: (D,) scores.
        gt: The image's ground truth.
        img_shape: ``(height, width)`` of the original image.
        iou_thr: IoU (and IoA) threshold, strict.
        chunk_rows: Detections per block (tests); None: automatic.

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
    num_pos = len(pos)
    if num_pos:
        step = chunk_rows_for(num_pos, chunk_rows)
        taken = np.zeros(num_pos, dtype=bool)
        left = num_pos
        for start in range(0, len(dets), step):
            iou = box_overlaps_f32(dets[start:start + step], pos, 'iou')
            if left < num_pos:
                # GTs matched in earlier blocks (by higher scores).
                iou[:, taken] = -1
            cand = np.flatnonzero(iou.max(axis=1) > thr)
            if not cand.size:
                continue
            iou = iou[cand]
            for r, i in enumerate(cand.tolist()):
                row = iou[r]
                j = row.argmax()
                if row[j] > thr:
                    labels[start + i] = TP
                    taken[j] = True
                    # A matched GT is out of reach of later detections.
                    iou[r + 1:, j] = -1
                    left -= 1
                    if not left:
                        break
            del iou
            if not left:
                break

    ign = gt_boxes[gt.regions]
    if len(ign):
        unmatched = np.flatnonzero(labels == FP)
        inside = _any_overlap_above(dets[unmatched], ign, thr,
                                    box_overlaps_f32, chunk_rows)
        labels[unmatched[inside]] = DROPPED
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


def max_weight_matching(rows: np.ndarray,
                        cols: np.ndarray,
                        weights: np.ndarray,
                        floor: float = 0.0,
                        dense_limit: Optional[int] = None
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """A maximum-weight matching of a bipartite graph given by its edges.

    Maximises the sum of the matched edges' weights; the matching need not
    be of maximum cardinality (CrowdDet's ``maxWeightMatching`` with
    ``maxcardinality=False``). All weights are positive, so every optimum
    extends to a full assignment with zero-weight non-edges:

    * a row (detection) with a single edge can be swapped for another
      single-edge row of the same column, so only the heaviest one of each
      column (the first on ties) is kept (crowds give many such rows:
      duplicates of one person);
    * if every remaining row and column has one edge, all edges are the
      matching;
    * a reduced problem of at most ``dense_limit`` (rows x columns) cells is
      solved by ``scipy.optimize.linear_sum_assignment`` on the dense weight
      matrix (non-edges 0, dropped from the result);
    * a larger one by scipy's sparse LAPJV
      (``min_weight_full_bipartite_matching``) on a graph where every row
      also has its own dummy column: an edge weighs ``w - floor`` > 0 (exact
      for ``floor <= w <= 2 floor``, IoU > 0.5 with floor 0.5), a dummy
      ``-floor`` (a tiny positive constant if ``floor`` is 0), so the total
      is ``sum(w) - floor * rows`` and its optimum the maximum-weight
      matching, in memory linear in the edges.

    When several matchings have the same weight, which one is returned is
    the solver's choice.

    Args:
        rows: (E,) row index of each edge.
        cols: (E,) column index of each edge; (row, col) pairs are unique.
        weights: (E,) float64 weights, all > ``floor``.
        floor: A lower bound of the weights (strict), >= 0.
        dense_limit: Largest dense problem (cells); None:
            :data:`DENSE_MATCHING_CELLS`.

    Returns:
        tuple[np.ndarray, np.ndarray]: The matched rows and their columns.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if rows.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if not (weights > floor).all():
        raise ValueError('every edge weight must be > floor')
    _, first, deg = np.unique(rows, return_index=True, return_counts=True)
    single = np.zeros(rows.shape, dtype=bool)
    single[first[deg == 1]] = True
    if single.any():
        idx = np.flatnonzero(single)
        idx = idx[np.lexsort((idx, -weights[idx], cols[idx]))]
        best = idx[np.r_[True, cols[idx][1:] != cols[idx][:-1]]]
        keep = ~single
        keep[best] = True
        rows, cols, weights = rows[keep], cols[keep], weights[keep]
    # Only the rows and columns that have an edge take part.
    urows, ri = np.unique(rows, return_inverse=True)
    ucols, ci = np.unique(cols, return_inverse=True)
    nr, nc = len(urows), len(ucols)
    if len(rows) == nr == nc:  # disjoint edges
        return rows, cols
    if dense_limit is None:
        dense_limit = DENSE_MATCHING_CELLS
    if nr * nc <= dense_limit:
        dense = np.zeros((nr, nc), dtype=np.float64)
        dense[ri, ci] = weights
        mr, mc = linear_sum_assignment(dense, maximize=True)
        real = dense[mr, mc] > 0
        return urows[mr[real]], ucols[mc[real]]
    dummy = -floor if floor > 0 else np.finfo(np.float64).tiny
    data = np.concatenate([weights - floor, np.full(nr, dummy)])
    r = np.concatenate([ri, np.arange(nr)])
    c = np.concatenate([ci, nc + np.arange(nr)])
    graph = csr_matrix((data, (r, c)), shape=(nr, nc + nr))
    mr, mc = min_weight_full_bipartite_matching(graph, maximize=True)
    real = mc < nc
    return urows[mr[real]], ucols[mc[real]]


def _iou_edges(dets: np.ndarray, gts: np.ndarray, thr: float,
               chunk_rows: Optional[int]
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (detection, GT) pairs of IoU > ``thr`` and their IoUs.

    Only pairs whose x-intervals can overlap are computed: the GTs are
    sorted by ``x1`` and a detection is compared with those of ``x1`` in
    ``(det.x1 - widest GT - 1, det.x2)``, a superset of the GTs it
    intersects (a pair outside has no intersection, IoU <= 0). Each IoU is
    computed with :func:`crowddet_overlaps`' float64 operations, element by
    element, so the values are the same. Blocks hold at most
    :data:`PAIR_CHUNK_ELEMS` pairs (or ``chunk_rows`` detections).

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: Detection indices,
        GT indices (int64) and IoUs (float64), by detection.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64),
             np.zeros(0, np.float64))
    if not len(dets) or not len(gts):
        return empty
    order = np.argsort(gts[:, 0], kind='stable')
    gx1 = gts[order, 0]
    widest = max(float((gts[:, 2] - gts[:, 0]).max()), 0.0)
    lo = np.searchsorted(gx1, dets[:, 0] - widest - 1.0, side='right')
    hi = np.searchsorted(gx1, dets[:, 2], side='left')
    counts = np.maximum(hi - lo, 0)
    cum = np.cumsum(counts)
    area_d = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    area_g = (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1])
    rows, cols, weights = [], [], []
    start = 0
    while start < len(dets):
        if chunk_rows is not None:
            stop = start + chunk_rows_for(0, chunk_rows)
        else:
            before = cum[start - 1] if start else 0
            stop = int(np.searchsorted(cum, before + PAIR_CHUNK_ELEMS,
                                       side='right'))
            stop = max(stop, start + 1)
        stop = min(stop, len(dets))
        c = counts[start:stop]
        total = int(c.sum())
        if total:
            d = np.repeat(np.arange(start, stop), c)
            offset = np.arange(total) - np.repeat(np.cumsum(c) - c, c)
            g = order[np.repeat(lo[start:stop], c) + offset]
            del offset
            iw = (np.minimum(dets[d, 2], gts[g, 2]) -
                  np.maximum(dets[d, 0], gts[g, 0]))
            ih = (np.minimum(dets[d, 3], gts[g, 3]) -
                  np.maximum(dets[d, 1], gts[g, 1]))
            inter = np.maximum(0, iw) * np.maximum(0, ih)
            del iw, ih
            with np.errstate(divide='ignore', invalid='ignore'):
                iou = inter / (area_d[d] + area_g[g] - inter + CROWDDET_EPS)
            edge = iou > thr
            rows.append(d[edge])
            cols.append(g[edge])
            weights.append(iou[edge])
            del d, g, inter, iou, edge
        start = stop
    if not rows:
        return empty
    rows = np.concatenate(rows).astype(np.int64)
    cols = np.concatenate(cols).astype(np.int64)
    weights = np.concatenate(weights)
    # by detection, then GT (the order of a dense matrix's nonzero())
    idx = np.lexsort((cols, rows))
    return rows[idx], cols[idx], weights[idx]


def jaccard_index_image(det_boxes: np.ndarray,
                        det_scores: np.ndarray,
                        gt: ImageGT,
                        img_shape: Optional[Tuple[int, int]],
                        iou_thr: float = 0.5,
                        score_thrs: Sequence[float] = JI_SCORE_THRS,
                        chunk_rows: Optional[int] = None) -> np.ndarray:
    """CrowdDet's Jaccard-index terms of one image at several thresholds.

    ``compute_JI.compute_JI_with_ignore`` of the CrowdDet code, per score
    threshold ``t``:

    * the detections with score > ``t`` are kept; detections and GTs are
      clipped as for AP (:func:`clip_boxes`, kept in float64);
    * the GTs of tag != -1 (``person`` and ``background``, CrowdDet's
      ``gt_tag``) are matched to the kept detections by a **maximum-weight**
      bipartite matching (:func:`max_weight_matching`) over the pairs of
      IoU > ``iou_thr`` (strict), weighted by their float64 IoU
      (:func:`crowddet_overlaps`);
    * ``k``: matched pairs; ``n``: kept detections minus the unmatched ones
      whose IoA (over the detection's area) with some ignore region (tag
      -1) is > ``iou_thr``; ``m``: GTs of tag != -1 minus the unmatched ones
      whose IoA (over the GT's area) with some ignore region is >
      ``iou_thr``.

    Overlaps are computed in blocks of detections (:data:`CHUNK_ELEMS`
    pairs) and only the pairs above the threshold are kept, so memory does
    not grow with detections x GTs.

    Args:
        det_boxes: (D, 4) ``xyxy`` detections.
        det_scores: (D,) scores.
        gt: The image's ground truth.
        img_shape: ``(height, width)`` of the original image; None (only
            without detections: an image without a prediction) leaves the
            GT boxes unclipped.
        iou_thr: Matching and ignore threshold (strict).
        score_thrs: (T,) score thresholds.
        chunk_rows: Detections per block (tests); None: automatic.

    Returns:
        np.ndarray: (T, 3) int64, per threshold ``(k, m, n)``.
    """
    scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(det_boxes).reshape(-1, 4)
    if img_shape is None:
        if len(scores):
            raise ValueError('detections need the image size (clipping)')
        dets = np.zeros((0, 4), np.float64)
        gt_boxes = np.asarray(gt.boxes, np.float64).reshape(-1, 4)
    else:
        dets = clip_boxes(boxes, img_shape, np.float64)
        gt_boxes = clip_boxes(gt.boxes, img_shape, np.float64)
    counted = gt.tags != IGNORE
    pos, ign = gt_boxes[counted], gt_boxes[~counted]
    thr = float(iou_thr)
    rows, cols, weights = _iou_edges(dets, pos, thr, chunk_rows)
    det_in_ign = _any_overlap_above(dets, ign, thr, crowddet_overlaps,
                                    chunk_rows)
    gt_in_ign = _any_overlap_above(pos, ign, thr, crowddet_overlaps,
                                   chunk_rows)
    out = np.zeros((len(score_thrs), 3), dtype=np.int64)
    last = None  # (threshold, kept detections, kept edges)
    for t, score_thr in enumerate(score_thrs):
        keep = scores > score_thr
        edge_keep = keep[rows]
        num_keep, num_edges = int(keep.sum()), int(edge_keep.sum())
        if (last is not None and score_thr >= last[0]
                and (num_keep, num_edges) == last[1:]):
            # A higher threshold keeps a subset: the same counts are the
            # same detections and pairs.
            out[t] = out[t - 1]
            continue
        last = (score_thr, num_keep, num_edges)
        mr, mc = max_weight_matching(rows[edge_keep], cols[edge_keep],
                                     weights[edge_keep], thr)
        det_matched = np.zeros(len(dets), dtype=bool)
        det_matched[mr] = True
        gt_matched = np.zeros(len(pos), dtype=bool)
        gt_matched[mc] = True
        k = len(mr)
        m = len(pos) - int(np.count_nonzero(gt_in_ign & ~gt_matched))
        n = num_keep - int(
            np.count_nonzero(det_in_ign & keep & ~det_matched))
        out[t] = (k, m, n)
    return out


def accumulate_jaccard_index(terms: Sequence[np.ndarray]) -> float:
    """The Jaccard index from per-image :func:`jaccard_index_image` terms.

    CrowdDet's ``compute_JI.gather``: per threshold, the sum over all images
    of ``k / (m + n - k + 1e-6)`` divided by the number of images with
    ``m > 0`` or ``n > 0`` (the others add 0); the JI is the best
    threshold's mean (0 when no image counts).

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

    @classmethod
    def from_data_sample(cls,
                         sample: dict,
                         where: Optional[str] = None) -> 'Prediction':
        """The validated prediction of one test-loop data sample.

        What ``CrowdHumanMRMetric.process`` receives and what
        ``tools/test.py --out`` pickles: a dict with ``img_id``,
        ``ori_shape`` ``(h, w, ...)`` and ``pred_instances`` holding
        ``bboxes`` (D, 4) ``xyxy`` in original-image pixels and ``scores``
        (D,), as numpy arrays or tensors.

        Args:
            sample (dict): One data sample, as a dict.
            where (str, optional): Location for error messages (a file and
                entry, a metric and image); ``image <ID>`` when None.

        Returns:
            Prediction: Validated by :func:`check_prediction`.

        Raises:
            ValueError: A field is missing (``'<where>: not a detection
                result with img_id, ori_shape and pred_instances'`` and the
                error), or the prediction cannot be scored
                (:func:`check_prediction`).
        """
        try:
            pred = sample['pred_instances']
            img_id = str(sample['img_id'])
            shape = tuple(sample['ori_shape'][:2])
            bboxes, scores = pred['bboxes'], pred['scores']
        except (KeyError, TypeError, ValueError, IndexError) as e:
            prefix = where or 'a data sample'
            raise ValueError(f'{prefix}: not a detection result with img_id, '
                             f'ori_shape and pred_instances ({e!r})') from None
        return check_prediction(img_id, shape, bboxes, scores, where)


def check_iou_thr(iou_thr: float) -> float:
    """``iou_thr`` as a float, or a ValueError unless 0 < iou_thr < 1.

    At 0 any touching box would match (IoU > 0), at 1 none could; NaN is
    refused too.
    """
    try:
        value = float(iou_thr)
    except (TypeError, ValueError):
        raise ValueError(f'iou_thr must be a number in (0, 1), got '
                         f'{iou_thr!r}') from None
    if not 0 < value < 1:
        raise ValueError(f'iou_thr must be in (0, 1), got {iou_thr!r}')
    return value


def _numeric(x, what: str, where: str) -> np.ndarray:
    """``x`` as a numeric (not bool) numpy array, or a ValueError."""
    if hasattr(x, 'detach'):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f'{where}: {what} are not an array ({e})') from None
    if a.dtype.kind not in 'fiu':
        raise ValueError(f'{where}: {what} must be numbers, got dtype '
                         f'{a.dtype}')
    return a


def check_prediction(img_id, img_shape, bboxes, scores,
                     where: Optional[str] = None) -> Prediction:
    """Validate one image's predictions; refuse what cannot be scored.

    Args:
        img_id: The image ID (kept as a string).
        img_shape: ``(height, width)`` of the original image, integers >= 1.
        bboxes: (D, 4) ``xyxy`` boxes (a numpy array or a tensor); an empty
            array of any shape is no box.
        scores: (D,) scores.
        where: Location for error messages (a file and line, a record);
            ``image <ID>`` when None.

    Returns:
        Prediction: The prediction, boxes (D, 4) and scores (D,) as numpy
        arrays in their own dtype.

    Raises:
        ValueError: Boxes that are not D rows of 4 numbers, scores that are
            not D numbers, a non-finite value (NaN, inf), or a size that is
            not two integers >= 1; the message names ``where`` and, for a
            value, the first offending detection.
    """
    img_id = str(img_id)
    where = where or f'image {img_id!r}'
    boxes = _numeric(bboxes, 'boxes', where)
    sc = _numeric(scores, 'scores', where)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if sc.size == 0:
        sc = sc.reshape(0)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f'{where}: boxes must be (D, 4) [x1, y1, x2, y2], '
                         f'got shape {tuple(boxes.shape)}')
    if sc.ndim != 1:
        raise ValueError(f'{where}: scores must be (D,), got shape '
                         f'{tuple(sc.shape)}')
    if len(boxes) != len(sc):
        raise ValueError(f'{where}: {len(boxes)} boxes but {len(sc)} '
                         'scores')
    for name, a in (('box', boxes), ('score', sc)):
        bad = ~np.isfinite(a)
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(len(a), -1).any(axis=1))[0])
            raise ValueError(f'{where}: detection {i} has a non-finite '
                             f'{name} {a[i].tolist()}')
    try:
        h, w = img_shape[:2]
        shape_ok = all(
            float(v) == int(v) and int(v) >= 1 and not isinstance(v, bool)
            for v in (h, w))
    except (TypeError, ValueError, OverflowError):
        shape_ok = False
    if not shape_ok:
        raise ValueError(f'{where}: the image size must be two integers '
                         f'>= 1 (height, width), got {img_shape!r}')
    return Prediction(img_id, (int(h), int(w)), boxes, sc)


def evaluate_crowdhuman(gts: Dict[str, ImageGT],
                        predictions: Sequence[Prediction],
                        iou_thr: float = 0.5,
                        mr_range: str = '-2',
                        with_ji: bool = False,
                        source: str = 'the annotation file',
                        show_progress: bool = False,
                        chunk_rows: Optional[int] = None) -> dict:
    """Evaluate predictions against the ground truth of a whole file.

    Every image of ``gts`` (the ground-truth file) is evaluated, as in the
    CrowdDet toolkit (``docs/algorithms.md`` section 6): an image without a
    prediction is an image without detections; it counts in the number of
    images (FPPI) and its GTs count in the recall denominator. Images are
    taken in annotation-file order, so the result does not depend on the
    order predictions arrive in (ties between images are broken by file
    order, as in mmdet's metric, which requires that order).

    The Jaccard index is CrowdDet's (:func:`jaccard_index_image`), over
    every image of ``gts`` too: an image without a prediction has ``k = n =
    0`` (its ratio is 0, and it counts when it has a GT outside the ignore
    regions; with no image size, its GTs are not clipped).

    Every prediction is validated first (:func:`check_prediction`).

    Args:
        gts: :func:`load_crowdhuman_gt` output.
        predictions: At most one :class:`Prediction` per image.
        iou_thr: IoU threshold, in (0, 1).
        mr_range: ``'-2'`` or ``'-4'``.
        with_ji: Also compute the Jaccard index (``JI``).
        source: Name of the ground truth in error messages.
        show_progress: Show mmengine's progress bar while matching.
        chunk_rows: Detections per block of overlaps (tests); None:
            automatic (:data:`CHUNK_ELEMS` pairs).

    Returns:
        dict: :func:`accumulate_crowdhuman`'s output, plus ``JI`` with
        ``with_ji``, ``num_imgs`` (images of ``gts``), ``num_predicted``
        (images with a prediction) and ``num_gts``.

    Raises:
        ValueError: A prediction's image ID is not in ``gts``, an image has
            two predictions, a prediction is malformed
            (:func:`check_prediction`), or ``iou_thr`` is not in (0, 1).
    """
    iou_thr = check_iou_thr(iou_thr)
    indexed = {}
    for pred in predictions:
        pred = check_prediction(*pred)
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
                                           pred.img_shape, iou_thr,
                                           chunk_rows)
            scores.append(s)
            labels.append(lb)
            if with_ji:
                ji_terms.append(
                    jaccard_index_image(pred.bboxes, pred.scores, gt,
                                        pred.img_shape, iou_thr,
                                        chunk_rows=chunk_rows))
        elif with_ji:
            ji_terms.append(
                jaccard_index_image(np.zeros((0, 4)), np.zeros(0), gt, None,
                                    iou_thr))
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
    'MR_REFERENCES', 'JI_SCORE_THRS', 'CHUNK_ELEMS', 'ImageGT', 'Prediction',
    'parse_crowdhuman_record',
    'load_crowdhuman_gt', 'clip_boxes', 'box_overlaps_f32',
    'crowddet_overlaps', 'chunk_rows_for', 'match_crowdhuman_image',
    'accumulate_crowdhuman', 'max_weight_matching', 'jaccard_index_image',
    'accumulate_jaccard_index', 'check_iou_thr', 'check_prediction',
    'evaluate_crowdhuman'
]
