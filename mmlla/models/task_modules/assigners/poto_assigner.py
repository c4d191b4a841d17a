"""POTO: prediction-aware one-to-one label assignment (DeFCN)."""
from typing import Optional, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData
from torch import Tensor

from .sparse_utils import (dense_matching, fill_unmatched, prior_pairs,
                           sparse_matching, sparse_pays)
from .utils import (check_score_type, column_winners, inside_prior,
                    pairs_to_result, prediction_quality, read_inputs,
                    row_best_claims)

OUTSIDE_QUALITY = -1.0
MATCH_MODES = ('hungarian', 'argmax')


@TASK_UTILS.register_module()
class POTOAssigner(BaseAssigner):
    """Prediction-aware one-to-one assignment of DeFCN (docs/algorithms.md
    section 2).

    ``quality[g, a] = p[a, c_g] ** (1 - alpha) * IoU(box[a], g) ** alpha``
    inside the spatial prior of ``g`` and ``-1`` outside; GTs are matched
    one-to-one to points maximising the total quality (Hungarian), or each
    takes its best point (``argmax``: a point taken by several GTs goes to
    the highest quality; a taken point of quality -1 stays background).
    Ignore regions take no part (DeFCN removes them before assignment).

    Spatial prior: strictly inside the GT box (``center_sampling_radius=0``,
    CrowdHuman), or strictly inside the square ``|x - cx| < r * s``,
    ``|y - cy| < r * s`` (``s`` the point's stride) intersected with the
    box (``center_sampling_radius=r``, 1.5 on COCO).

    The quality is computed only at the (GT, point) pairs inside the
    priors, listed from the grid cells each prior covers (no G x A scan;
    :func:`sparse_utils.prior_pairs`). Hungarian: a GT matched outside its
    prior adds -1 whatever point it takes, so the optimum is the matching
    of in-prior pairs of largest total ``quality + 1``; it is solved sparse,
    each GT keeping its ``G`` best points (which keeps the optimum:
    :func:`sparse_utils.sparse_matching`). GTs left without an in-prior
    point (none free, or none at all) then take, in ascending GT order, the
    lowest-index points still free (:func:`sparse_utils.fill_unmatched`):
    the rule that picks one of the equally good -1 matches of the dense
    problem. Where several matchings reach the optimum with exactly equal
    qualities, the pairs are the sparse solver's choice.

    ``sparse=False`` is the reference: the dense prior mask, the quality
    matrix of the in-prior columns plus ``G`` outside ones and scipy's
    ``linear_sum_assignment`` on it (the same optimum; the same pairs
    unless qualities tie exactly), then the same fill rule. Small problems
    (``sparse_utils.sparse_pays`` false) take that path too, where
    it is the faster one.

    Args:
        alpha (float): IoU weight in the quality. Defaults to 0.8.
        center_sampling_radius (float): 0 = the whole GT box is the prior
            (CrowdHuman); > 0 = radius in strides around the GT centre,
            clipped to the box (1.5 on COCO).
        match (str): ``'hungarian'`` or ``'argmax'``.
        score_type (str): what ``pred_instances.scores`` are: ``'probs'``
            (the default: class probabilities, as POTOHead passes) or
            ``'logits'`` (classification logits, e.g. mmdet's RTMDetHead),
            turned into probabilities ``sigmoid(x)`` for the quality.
        sparse (bool): the sparse path (default) or the dense reference
            (for tests and benchmarks).
    """

    def __init__(self,
                 alpha: float = 0.8,
                 center_sampling_radius: float = 0.0,
                 match: str = 'hungarian',
                 score_type: str = 'probs',
                 sparse: bool = True) -> None:
        if match not in MATCH_MODES:
            raise ValueError(f'match must be one of {MATCH_MODES}, '
                             f'got {match!r}')
        self.alpha = alpha
        self.center_sampling_radius = center_sampling_radius
        self.match = match
        self.score_type = check_score_type(score_type)
        self.sparse = sparse

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               **kwargs) -> AssignResult:
        """Assign GTs to points one-to-one.

        Args:
            pred_instances (InstanceData): ``priors`` (A, 4) points with
                strides, ``scores`` (A, C) probabilities (or logits: see
                ``score_type``), ``bboxes`` (A, 4) decoded xyxy predictions.
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): not used: ignore
                regions take no part in DeFCN's assignment.

        Returns:
            AssignResult: ``gt_inds`` (A,) 0 background, k + 1 for GT k;
            ``max_overlaps`` the IoU of a positive's box with its GT.
        """
        inputs = read_inputs('POTOAssigner', pred_instances, gt_instances)
        if inputs.is_empty:
            return inputs.empty_result()
        priors, scores, bboxes = inputs.priors, inputs.scores, inputs.bboxes
        if self.score_type == 'logits':
            scores = scores.float().sigmoid()
        gt_boxes, gt_labels = inputs.gt_boxes, inputs.gt_labels
        num_rows, num_priors = inputs.num_rows, inputs.num_priors

        if not (self.sparse and sparse_pays(num_rows, num_priors,
                                            priors.device)):
            gt_idx, prior_idx = self._match_dense(priors, scores, bboxes,
                                                  gt_boxes, gt_labels)
        else:
            rows, points = prior_pairs(priors, gt_boxes,
                                       self.center_sampling_radius)
            quality = pair_quality(scores, bboxes, gt_boxes, gt_labels, rows,
                                   points, self.alpha)
            if self.match == 'hungarian':
                gt_idx, prior_idx = sparse_matching(
                    rows, points, quality, num_rows, OUTSIDE_QUALITY,
                    maximize=True)
            else:
                gt_idx, prior_idx = sparse_argmax(rows, points, quality,
                                                  num_rows)
        if self.match == 'hungarian':
            gt_idx, prior_idx = fill_unmatched(gt_idx, prior_idx, num_rows,
                                               num_priors)
        return pairs_to_result(inputs.num_gts, num_priors, gt_boxes,
                               gt_labels, gt_idx, prior_idx, bboxes)

    def _match_dense(self, priors: Tensor, scores: Tensor, bboxes: Tensor,
                     gt_boxes: Tensor,
                     gt_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """The reference path: the (R, A) prior mask, the quality of the
        in-prior columns (plus ``R`` outside ones for the Hungarian), and
        scipy's dense solver or the dense argmax. Returns the matched
        in-prior (GT, point) pairs."""
        num_rows = len(gt_boxes)
        inside = inside_prior(priors, gt_boxes, self.center_sampling_radius)
        in_any = inside.any(dim=0)
        cols = in_any.nonzero(as_tuple=True)[0]
        if self.match == 'hungarian':
            # enough interchangeable "outside" columns to keep the optimum
            outside = (~in_any).nonzero(as_tuple=True)[0][:num_rows]
            cols = torch.cat([cols, outside]).sort().values
        if cols.numel() == 0:
            empty = cols.new_zeros(0)
            return empty, empty
        gt_pair, col_pair = inside[:, cols].nonzero(as_tuple=True)
        quality = scores.new_full((num_rows, len(cols)), OUTSIDE_QUALITY)
        quality[gt_pair, col_pair] = prediction_quality(
            scores[cols[col_pair]], bboxes[cols[col_pair]], gt_boxes[gt_pair],
            gt_labels[gt_pair], self.alpha, aligned=True)
        if self.match == 'hungarian':
            gt_idx, sub = dense_matching(quality, OUTSIDE_QUALITY,
                                         maximize=True)
            return gt_idx, cols[sub]
        # each GT claims its best column, which goes to the highest-quality
        # claimant; a point claimed only with quality -1 (outside) stays
        # background
        gt_idx, sub = column_winners(
            row_best_claims(quality, -float('inf')), OUTSIDE_QUALITY)
        return gt_idx, cols[sub]


def pair_quality(scores: Tensor, bboxes: Tensor, gt_boxes: Tensor,
                 gt_labels: Tensor, rows: Tensor, points: Tensor,
                 alpha: float) -> Tensor:
    """(P,) POTO quality of the pairs (GT ``rows[i]``, point
    ``points[i]``): the operations of ``prediction_quality(...,
    aligned=True)``, with the class probability gathered per pair instead
    of per point row (no (P, C) copy)."""
    prob = scores[points, gt_labels.long()[rows]]
    iou = bbox_overlaps(gt_boxes[rows], bboxes[points], is_aligned=True)
    return prob.clamp(min=0)**(1 - alpha) * iou.clamp(min=0)**alpha


def sparse_argmax(rows: Tensor, points: Tensor, quality: Tensor,
                  num_rows: int) -> Tuple[Tensor, Tensor]:
    """The ``argmax`` variant on the in-prior pairs: each GT takes its
    highest-quality point (the lowest index on a tie); a point taken by
    several GTs goes to the highest quality (the lowest GT on a tie). GTs
    without an in-prior point take nothing (their best is -1)."""
    if rows.numel() == 0:
        return rows, points
    # each GT's best pair: the first pair (lowest point) of maximum quality
    row_max = quality.new_full((num_rows, ), -float('inf')).scatter_reduce(
        0, rows, quality, 'amax')
    position = torch.arange(len(rows), device=rows.device)
    best = torch.full((num_rows, ), len(rows), device=rows.device)
    best = best.scatter_reduce(
        0, rows[quality == row_max[rows]],
        position[quality == row_max[rows]], 'amin')
    best = best[best < len(rows)]
    claim_gt, claim_pt, claim_q = rows[best], points[best], quality[best]
    # per point: the highest quality, then the lowest GT (claims are in GT
    # order)
    by_q = torch.sort(claim_q, descending=True, stable=True).indices
    by_pt = by_q[torch.sort(claim_pt[by_q], stable=True).indices]
    pts = claim_pt[by_pt]
    first = torch.ones_like(pts, dtype=torch.bool)
    first[1:] = pts[1:] != pts[:-1]
    win = by_pt[first]
    return claim_gt[win], claim_pt[win]
