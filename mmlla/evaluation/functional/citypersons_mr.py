"""CityPersons log-average miss rate in the standard setups, as pure functions.

The protocol is the one of the evaluation code the CityPersons benchmark
uses (``eval_MR_multisetup.py``, P. Dollar's Caltech rules in the COCO API's
shape, copied in CSP, Pedestron, APD, ...); mmdet has no equivalent and that
code needs mmdet 0.x-era tooling (pycocotools objects, a results JSON). For
each *setup* (a height range and a visibility range, :data:`SETUPS`):

* ground truth: a box is *ignored* when :func:`is_citypersons_ignore` says
  so (ignored classes, ``ignore`` or ``iscrowd`` set) or its ``height`` or
  ``vis_ratio`` field is outside the setup's ranges (bounds included);
* detections: the :data:`MAX_DETS` best of an image by score (a stable
  sort: equal scores keep their order) whose box height is in
  ``[h_min / HEIGHT_MARGIN, h_max * HEIGHT_MARGIN)``; the others are not
  evaluated (they neither match nor count as false positives);
* matching, detection by detection in score order: the not-yet-matched,
  not-ignored ground truth of highest IoU (the last of equal ones) if that
  IoU is >= ``iou_thr``: a true positive; otherwise, if its overlap with an
  ignored box, *intersection over the detection's own area*, is >=
  ``iou_thr``: dropped; otherwise a false positive. Ignored boxes can take
  any number of detections;
* all images' kept detections are sorted by score (stable: ties keep image
  order, images in ascending id), ``recall = TP / (not-ignored GTs)`` and
  ``FPPI = FP / (images of the ground-truth file)``; at each of the 9
  reference FPPIs in ``[1e-2, 1]`` the miss rate ``1 - recall`` of the last
  point whose FPPI is <= the reference is read, and the log-average miss
  rate is their geometric mean.

Three cases are defined here where the reference code is not:

* a reference FPPI below the curve's first point (the first kept detection
  is a false positive and ``1 / images > 1e-2``: fewer than 100 images)
  reads the miss rate 1 of the empty curve, where the reference code indexes
  ``recall[-1]`` and reads the final recall instead; on any set of 100
  images or more (the 500 of CityPersons val) the two agree;
* a setup without any not-ignored ground truth has no miss rate: NaN here,
  -1 (printed as -100%) in the reference code;
* an annotation of another category than 1 is an ignore region here, as in
  the CityPersons protocol; the reference code evaluates category 1 only and
  would not see it at all (the community ``val_gt.json`` keeps every box in
  category 1 and marks the ignored ones with ``ignore: 1``, so it gives the
  same numbers).

Overlaps are computed in float64 with the reference's operations and order
(``x2 = x + w``, ``inter / (area_d + area_g - inter)``), from boxes converted
to ``[x, y, w, h]`` as a results file holds them, so the same detections
match the same boxes.
"""
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mmengine.utils import ProgressBar

from mmlla.datasets.formats.citypersons import (CityPersonsFormatError,
                                                is_citypersons_ignore,
                                                read_citypersons_json)
from mmlla.datasets.formats.common import short_repr
from .crowdhuman_mr import MR_REFERENCES, check_iou_thr

# The unbounded end of a range, as the reference code writes it (1e5 ** 2).
NO_LIMIT = 1e10
# The standard setups: name -> ((height min, max), (visibility min, max)),
# bounds included for the ground truth.
SETUPS = {
    'Reasonable': ((50.0, NO_LIMIT), (0.65, NO_LIMIT)),
    'Small': ((50.0, 75.0), (0.65, NO_LIMIT)),
    'Heavy': ((50.0, NO_LIMIT), (0.2, 0.65)),
    'Partial': ((50.0, NO_LIMIT), (0.65, 0.9)),
    'Bare': ((50.0, NO_LIMIT), (0.9, NO_LIMIT)),
    'All': ((20.0, NO_LIMIT), (0.2, NO_LIMIT)),
}
# Detections are evaluated when their height is in
# [h_min / HEIGHT_MARGIN, h_max * HEIGHT_MARGIN) (the reference's expFilter).
HEIGHT_MARGIN = 1.25
# The best detections per image that are evaluated.
MAX_DETS = 1000
# The 9 reference FPPIs in [1e-2, 1], rounded as the reference code has them.
FPPI_REFS = MR_REFERENCES['-2']
# The reference code matches at min(iou_thr, 1 - 1e-10).
MAX_MATCH_THR = 1 - 1e-10
# Detection labels of match_citypersons_image.
TP, FP, DROPPED = 1, 0, -1


class CityPersonsImageGT(NamedTuple):
    """The evaluated ground truth of one image.

    Attributes:
        boxes (np.ndarray): (G, 4) float64 ``[x, y, w, h]`` as annotated.
        heights (np.ndarray): (G,) float64 ``height`` fields.
        vis_ratios (np.ndarray): (G,) float64 ``vis_ratio`` fields.
        ignore (np.ndarray): (G,) bool, :func:`is_citypersons_ignore`.
    """
    boxes: np.ndarray
    heights: np.ndarray
    vis_ratios: np.ndarray
    ignore: np.ndarray

    def ignored_in(self, setup: str) -> np.ndarray:
        """(G,) bool: the boxes the setup ignores."""
        (h0, h1), (v0, v1) = SETUPS[setup]
        return (self.ignore | (self.heights < h0) | (self.heights > h1)
                | (self.vis_ratios < v0) | (self.vis_ratios > v1))


class CityPersonsPrediction(NamedTuple):
    """One image's detections.

    Attributes:
        img_id (int): The image id of the annotation file.
        bboxes (np.ndarray): (D, 4) float64 ``xyxy`` boxes.
        scores (np.ndarray): (D,) float64 scores.
    """
    img_id: int
    bboxes: np.ndarray
    scores: np.ndarray

    @classmethod
    def from_data_sample(cls,
                         sample: dict,
                         where: Optional[str] = None
                         ) -> 'CityPersonsPrediction':
        """The validated prediction of one test-loop data sample.

        What ``CityPersonsMRMetric.process`` receives and what
        ``tools/test.py --out`` pickles: a dict with ``img_id`` (the integer
        id of the annotation file) and ``pred_instances`` holding ``bboxes``
        (D, 4) ``xyxy`` in original-image pixels and ``scores`` (D,).

        Args:
            sample (dict): One data sample, as a dict.
            where (str, optional): Location for error messages (a file and
                entry, a metric and image); ``prediction for image <id>``
                when None.

        Returns:
            CityPersonsPrediction: Boxes (D, 4) and scores (D,) in float64,
            validated by :func:`check_detections`.

        Raises:
            ValueError: A field is missing, ``img_id`` is not an integer, or
                the detections cannot be scored; the message names
                ``where``.
        """
        try:
            raw_id = sample['img_id']
            bboxes = sample['pred_instances']['bboxes']
            scores = sample['pred_instances']['scores']
        except (KeyError, TypeError, IndexError) as e:
            raise ValueError(f'{where or "a data sample"}: not a detection '
                             f'result with img_id and pred_instances '
                             f'({e!r})') from None
        img_id = citypersons_image_id(raw_id, where or 'a prediction')
        where = where or f'prediction for image {img_id}'
        boxes, scores = check_detections(bboxes, scores, where)
        return cls(img_id, boxes, scores)


def citypersons_image_id(value, where: str) -> int:
    """An image id of the annotation file (an integer), or a ValueError.

    Args:
        value (Any): A Python, numpy or 0-d tensor integer.
        where (str): Location for the error message.

    Returns:
        int: The id.
    """
    if hasattr(value, 'item') and getattr(value, 'ndim', 1) == 0:
        value = value.item()  # a numpy or torch scalar
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{where}: img_id must be the integer id of the '
                         f'annotation file, got {short_repr(value)}')
    return value


def check_setups(setups: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """The setup names (all of :data:`SETUPS` when None), validated."""
    if setups is None:
        return tuple(SETUPS)
    setups = tuple(setups)
    unknown = [s for s in setups if s not in SETUPS]
    if unknown or not setups:
        raise ValueError(f'setups must be names of {list(SETUPS)}, got '
                         f'{list(setups)!r}')
    return setups


def load_citypersons_gt(ann_file: str,
                        backend_args: Optional[dict] = None
                        ) -> Dict[int, CityPersonsImageGT]:
    """Load a CityPersons JSON file for evaluation.

    Args:
        ann_file: Path (any mmengine file backend) of the JSON file.
        backend_args: mmengine file backend arguments.

    Returns:
        dict[int, CityPersonsImageGT]: Image id to its ground truth, in
        ascending image id (the order the reference code evaluates in).

    Raises:
        CityPersonsFormatError: A malformed file or record (the reader of
            the format module,
            :func:`~mmlla.datasets.formats.citypersons.read_citypersons_json`),
            or an annotation without the ``height`` or ``vis_ratio`` the
            setups are defined on (file and record named).
    """
    gts = {}
    for img in read_citypersons_json(ann_file, backend_args):
        n = len(img.anns)
        boxes = np.zeros((n, 4), np.float64)
        heights = np.zeros(n, np.float64)
        vis = np.zeros(n, np.float64)
        ignore = np.zeros(n, bool)
        for k, (where, ann) in enumerate(img.anns):
            for key in ('height', 'vis_ratio'):
                if key not in ann:
                    raise CityPersonsFormatError(
                        f'{where}: no "{key}" (the evaluation setups are '
                        'defined on "height" and "vis_ratio")')
            # read_citypersons_json validated the values.
            boxes[k] = [float(v) for v in ann['bbox']]
            heights[k] = float(ann['height'])
            vis[k] = float(ann['vis_ratio'])
            ignore[k] = is_citypersons_ignore(ann)
        gts[img.img_id] = CityPersonsImageGT(boxes, heights, vis, ignore)
    return dict(sorted(gts.items()))


def check_detections(bboxes, scores, where: str
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one image's detections; refuse what cannot be scored.

    The CrowdHuman ``check_prediction`` also requires the image size (its
    protocol clips boxes); this protocol does not clip, so results files
    without sizes (COCO-style results) are scored too.

    Args:
        bboxes: (D, 4) ``xyxy`` boxes (a numpy array or a tensor); an empty
            array of any shape is no box.
        scores: (D,) scores.
        where: Location for error messages.

    Returns:
        tuple[np.ndarray, np.ndarray]: (D, 4) boxes and (D,) scores, float64.

    Raises:
        ValueError: Not numbers, boxes that are not D rows of 4, scores that
            are not D, or a non-finite value (the first such detection
            named).
    """
    arrays = []
    for name, x in (('boxes', bboxes), ('scores', scores)):
        if hasattr(x, 'detach'):  # a torch tensor, on any device
            x = x.detach().cpu().numpy()
        try:
            a = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise ValueError(f'{where}: {name} are not an array '
                             f'({e})') from None
        if a.dtype.kind not in 'fiu':
            raise ValueError(f'{where}: {name} must be numbers, got dtype '
                             f'{a.dtype}')
        arrays.append(a.astype(np.float64))
    boxes, sc = arrays
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if sc.size == 0:
        sc = sc.reshape(0)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f'{where}: boxes must be (D, 4) [x1, y1, x2, y2], '
                         f'got shape {tuple(boxes.shape)}')
    if sc.ndim != 1 or len(sc) != len(boxes):
        raise ValueError(f'{where}: {len(boxes)} boxes but scores of shape '
                         f'{tuple(sc.shape)}')
    bad = ~(np.isfinite(boxes).all(axis=1) & np.isfinite(sc))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f'{where}: detection {i} is not finite (box '
                         f'{boxes[i].tolist()}, score {sc[i]})')
    return boxes, sc


def overlaps_xywh(dets: np.ndarray, gts: np.ndarray,
                  crowd: np.ndarray) -> np.ndarray:
    """IoU, or intersection over the detection's area for ``crowd`` columns.

    The reference's float64 operations: ``x2 = x + w``; no overlap unless
    both sides of the intersection are > 0; ``inter / (w_d * h_d)`` for a
    crowd (ignored) box, ``inter / (w_d * h_d + w_g * h_g - inter)``
    otherwise.

    Args:
        dets: (D, 4) ``[x, y, w, h]`` detections.
        gts: (G, 4) ``[x, y, w, h]`` boxes.
        crowd: (G,) bool, the ignored boxes.

    Returns:
        np.ndarray: (D, G) float64 overlaps.
    """
    d = np.asarray(dets, np.float64).reshape(-1, 4)
    g = np.asarray(gts, np.float64).reshape(-1, 4)
    dx2, dy2 = d[:, 0] + d[:, 2], d[:, 1] + d[:, 3]
    gx2, gy2 = g[:, 0] + g[:, 2], g[:, 1] + g[:, 3]
    iw = (np.minimum(dx2[:, None], gx2[None, :]) -
          np.maximum(d[:, None, 0], g[None, :, 0]))
    ih = (np.minimum(dy2[:, None], gy2[None, :]) -
          np.maximum(d[:, None, 1], g[None, :, 1]))
    inter = iw * ih
    area_d = (d[:, 2] * d[:, 3])[:, None]
    area_g = (g[:, 2] * g[:, 3])[None, :]
    union = np.where(np.asarray(crowd, bool)[None, :], area_d,
                     area_d + area_g - inter)
    with np.errstate(divide='ignore', invalid='ignore'):
        out = inter / union
    return np.where((iw > 0) & (ih > 0), out, 0.0)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2]`` to ``[x1, y1, x2 - x1, y2 - y1]`` (float64)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def top_detections(bboxes: np.ndarray, scores: np.ndarray,
                   max_dets: int = MAX_DETS
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """The ``max_dets`` best detections, by descending score (stable).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``[x, y, w, h]`` boxes (K, 4) and
        scores (K,), K <= ``max_dets``.
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind='stable')[:max_dets]
    return xyxy_to_xywh(bboxes)[order], scores[order]


def match_citypersons_image(dets: np.ndarray,
                            scores: np.ndarray,
                            gt: CityPersonsImageGT,
                            setup: str,
                            iou_thr: float = 0.5,
                            overlaps: Optional[np.ndarray] = None
                            ) -> Tuple[np.ndarray, np.ndarray]:
    """Match one image's detections in one setup (see the module doc).

    Args:
        dets: (K, 4) ``[x, y, w, h]`` detections sorted by descending score
            (:func:`top_detections`).
        scores: (K,) their scores.
        gt: The image's ground truth.
        setup: A name of :data:`SETUPS`.
        iou_thr: The matching threshold (>=).
        overlaps: (K, G, 2) the IoU (``[..., 0]``) and the intersection over
            the detection's area (``[..., 1]``) of every pair, to share
            between setups; computed when None.

    Returns:
        tuple[np.ndarray, np.ndarray]: The scores (E,) and labels (E,) int8
        (1 TP, 0 FP, -1 dropped) of the E detections the setup evaluates
        (height in range), in score order.
    """
    (h0, h1), _ = SETUPS[setup]
    dh = dets[:, 3]
    keep = (dh >= h0 / HEIGHT_MARGIN) & (dh < h1 * HEIGHT_MARGIN)
    dets, scores = dets[keep], scores[keep]
    labels = np.full(len(scores), FP, np.int8)
    ignored = gt.ignored_in(setup)
    if not len(scores) or not len(ignored):
        return scores, labels
    if overlaps is None:
        iou = overlaps_xywh(dets, gt.boxes, np.zeros(len(ignored), bool))
        ioa = overlaps_xywh(dets, gt.boxes, np.ones(len(ignored), bool))
    else:
        iou, ioa = overlaps[keep, :, 0], overlaps[keep, :, 1]
    thr = min(float(iou_thr), MAX_MATCH_THR)
    reg = iou[:, ~ignored]
    if reg.shape[1]:
        # Only detections with some IoU >= thr can match; the loop visits
        # them in score order, GTs matched earlier out of reach.
        taken = np.zeros(reg.shape[1], bool)
        for i in np.flatnonzero((reg >= thr).any(axis=1)).tolist():
            row = np.where(taken, -1.0, reg[i])
            best = row.max()
            if best >= thr:
                # the last of equal IoUs, as the reference's `>=` scan
                j = len(row) - 1 - int(row[::-1].argmax())
                taken[j] = True
                labels[i] = TP
    if ignored.any():
        unmatched = labels == FP
        inside = (ioa[:, ignored] >= thr).any(axis=1)
        labels[unmatched & inside] = DROPPED
    return scores, labels


def log_average_miss_rate(scores: Sequence[np.ndarray],
                          labels: Sequence[np.ndarray], num_gts: int,
                          num_imgs: int) -> dict:
    """The log-average miss rate and curve from all images' matches.

    Args:
        scores: Per image (in ascending image id), (E_i,) scores of
            :func:`match_citypersons_image`.
        labels: Per image, (E_i,) labels (1 TP, 0 FP, -1 dropped).
        num_gts: Not-ignored ground truths of all images.
        num_imgs: Images of the ground-truth file.

    Returns:
        dict: ``MR`` (float in [0, 1]; NaN without ground truth), the curve
        over the kept detections sorted by score: ``fppi`` (K,),
        ``miss_rate`` (K,), and ``fppi_refs`` (9,) with the miss rates read
        there, ``mr_at_refs`` (9,).
    """
    refs = np.asarray(FPPI_REFS, np.float64)
    all_scores = np.concatenate([np.asarray(s, np.float64) for s in scores]
                                + [np.zeros(0)])
    all_labels = np.concatenate([np.asarray(lb, np.int8) for lb in labels]
                                + [np.zeros(0, np.int8)])
    kept = all_labels != DROPPED
    order = np.argsort(-all_scores[kept], kind='stable')
    is_tp = all_labels[kept][order] == TP
    tp = np.cumsum(is_tp, dtype=np.float64)
    fp = np.cumsum(~is_tp, dtype=np.float64)
    fppi = fp / max(num_imgs, 1)
    if num_gts <= 0:
        nan = np.full(len(tp), math.nan)
        return dict(MR=math.nan, fppi=fppi, miss_rate=nan, fppi_refs=refs,
                    mr_at_refs=np.full(len(refs), math.nan))
    miss_rate = 1.0 - tp / num_gts
    # the last point at or below each reference; none: the empty curve (1)
    idx = np.searchsorted(fppi, refs, side='right') - 1
    mr_at_refs = np.ones(len(refs))
    mr_at_refs[idx >= 0] = miss_rate[idx[idx >= 0]]
    with np.errstate(divide='ignore'):
        mr = float(np.exp(np.log(mr_at_refs).mean()))
    return dict(MR=mr, fppi=fppi, miss_rate=miss_rate, fppi_refs=refs,
                mr_at_refs=mr_at_refs)


def evaluate_citypersons(gts: Dict[int, CityPersonsImageGT],
                         predictions: Sequence[CityPersonsPrediction],
                         setups: Optional[Sequence[str]] = None,
                         iou_thr: float = 0.5,
                         max_dets: int = MAX_DETS,
                         source: str = 'the annotation file',
                         show_progress: bool = False) -> dict:
    """Evaluate predictions against the ground truth of a whole file.

    Every image of ``gts`` is evaluated (FPPI divides by their number); an
    image without a prediction is an image without detections. Images are
    taken in ascending id, so the result does not depend on the order the
    predictions arrive in.

    Args:
        gts: :func:`load_citypersons_gt` output.
        predictions: At most one :class:`CityPersonsPrediction` per image.
        setups: Names of :data:`SETUPS` to evaluate; all when None.
        iou_thr: Matching threshold (>=), in (0, 1).
        max_dets: Best detections per image evaluated, >= 1.
        source: Name of the ground truth in error messages.
        show_progress: Show mmengine's progress bar while matching.

    Returns:
        dict: ``MR`` ``{setup: float}``, ``curves`` ``{setup:``
        :func:`log_average_miss_rate` ``output}``, ``num_gts`` ``{setup:
        int}``, ``num_imgs`` and ``num_predicted``.

    Raises:
        ValueError: A prediction's image id is not in ``gts`` or repeats, a
            prediction is malformed (:func:`check_detections`), an unknown
            setup, ``iou_thr`` not in (0, 1) or ``max_dets`` < 1.
    """
    setups = check_setups(setups)
    iou_thr = check_iou_thr(iou_thr)
    if isinstance(max_dets, bool) or not isinstance(max_dets, int) \
            or max_dets < 1:
        raise ValueError(f'max_dets must be an integer >= 1, got '
                         f'{max_dets!r}')
    indexed: Dict[int, CityPersonsPrediction] = {}
    for pred in predictions:
        img_id = pred.img_id
        if img_id not in gts:
            raise ValueError(f'image id {img_id!r} of the predictions is not '
                             f'in {source}')
        if img_id in indexed:
            raise ValueError(f'image id {img_id!r} has predictions twice')
        boxes, scores = check_detections(pred.bboxes, pred.scores,
                                         f'image {img_id}')
        indexed[img_id] = CityPersonsPrediction(img_id, boxes, scores)
    per_setup: Dict[str, Tuple[List[np.ndarray], List[np.ndarray]]] = {
        s: ([], [])
        for s in setups
    }
    num_gts = {s: 0 for s in setups}
    bar = ProgressBar(len(gts)) if show_progress else None
    for img_id, gt in gts.items():
        pred = indexed.get(img_id)
        overlaps = None
        if pred is not None and len(pred.scores):
            dets, scores = top_detections(pred.bboxes, pred.scores, max_dets)
            n = len(gt.ignore)
            overlaps = np.stack([
                overlaps_xywh(dets, gt.boxes, np.zeros(n, bool)),
                overlaps_xywh(dets, gt.boxes, np.ones(n, bool))
            ], axis=-1)
        for setup in setups:
            num_gts[setup] += int(np.count_nonzero(~gt.ignored_in(setup)))
            if overlaps is None:
                continue
            s, lb = match_citypersons_image(dets, scores, gt, setup, iou_thr,
                                            overlaps)
            per_setup[setup][0].append(s)
            per_setup[setup][1].append(lb)
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    curves = {
        s: log_average_miss_rate(*per_setup[s], num_gts[s], len(gts))
        for s in setups
    }
    return dict(
        MR={s: curves[s]['MR']
            for s in setups},
        curves=curves,
        num_gts=num_gts,
        num_imgs=len(gts),
        num_predicted=len(indexed))


__all__ = [
    'SETUPS', 'HEIGHT_MARGIN', 'MAX_DETS', 'FPPI_REFS', 'CityPersonsImageGT',
    'CityPersonsPrediction', 'citypersons_image_id', 'check_setups',
    'load_citypersons_gt', 'check_detections', 'overlaps_xywh',
    'xyxy_to_xywh', 'top_detections', 'match_citypersons_image',
    'log_average_miss_rate', 'evaluate_citypersons'
]
