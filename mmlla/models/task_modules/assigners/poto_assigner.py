"""POTO: prediction-aware one-to-one label assignment (DeFCN)."""
from typing import Optional

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from .loss_aware_assigner import check_score_type
from .one2one_utils import (check_finite, empty_result, inside_prior,
                            gt_rows, pairs_to_result,
                            prediction_quality)

OUTSIDE_QUALITY = -1.0
MATCH_MODES = ('hungarian', 'argmax')


@TASK_UTILS.register_module()
class POTOAssigner(BaseAssigner):
    """Prediction-aware one-to-one assignment of DeFCN.

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

    The Hungarian problem is solved on the columns that can matter only:
    every point inside some GT's prior, plus ``G`` points outside every
    prior. Columns outside every prior are
    all ``-1`` for every row, hence interchangeable, and an optimal matching
    uses at most ``G`` of them, so the optimum on the reduced matrix equals
    the optimum on the full ``(G, A)`` matrix.

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
    """

    def __init__(self,
                 alpha: float = 0.8,
                 center_sampling_radius: float = 0.0,
                 match: str = 'hungarian',
                 score_type: str = 'probs') -> None:
        if match not in MATCH_MODES:
            raise ValueError(f'match must be one of {MATCH_MODES}, '
                             f'got {match!r}')
        self.alpha = alpha
        self.center_sampling_radius = center_sampling_radius
        self.match = match
        self.score_type = check_score_type(score_type)

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
        priors = pred_instances.priors
        scores = pred_instances.scores
        bboxes = pred_instances.bboxes
        check_finite('pred_instances.scores', scores)
        check_finite('pred_instances.bboxes', bboxes)
        if self.score_type == 'logits':
            scores = scores.float().sigmoid()
        gt_boxes, gt_labels, num_gts = gt_rows(gt_instances)
        num_rows, num_priors = len(gt_boxes), len(priors)
        if num_rows == 0 or num_priors == 0:
            return empty_result(num_gts, num_priors, priors.device)

        inside = inside_prior(priors, gt_boxes, self.center_sampling_radius)
        in_any = inside.any(dim=0)
        cols = in_any.nonzero(as_tuple=True)[0]
        if self.match == 'hungarian':
            # enough interchangeable "outside" columns to keep the optimum
            outside = (~in_any).nonzero(as_tuple=True)[0][:num_rows]
            cols = torch.cat([cols, outside]).sort().values
        if cols.numel() == 0:
            return empty_result(num_gts, num_priors, priors.device)

        # The quality only at the (GT, point) pairs inside the prior: in a
        # crowd nearly every point is inside some box, but each box holds
        # few of them, so this is far less than the (R, K) dense product.
        gt_pair, col_pair = inside[:, cols].nonzero(as_tuple=True)
        quality = scores.new_full((num_rows, len(cols)), OUTSIDE_QUALITY)
        quality[gt_pair, col_pair] = prediction_quality(
            scores[cols[col_pair]], bboxes[cols[col_pair]], gt_boxes[gt_pair],
            gt_labels[gt_pair], self.alpha, aligned=True)

        if self.match == 'hungarian':
            rows, sub = linear_sum_assignment(
                quality.detach().cpu().double().numpy(), maximize=True)
            gt_idx = torch.as_tensor(rows, device=priors.device)
            prior_idx = cols[torch.as_tensor(sub, device=priors.device)]
        else:
            best_q, best_col = quality.max(dim=1)  # (R,)
            claims = quality.new_full(quality.shape, -float('inf'))
            claims[torch.arange(num_rows), best_col] = best_q
            col_q, col_gt = claims.max(dim=0)  # highest-quality claimant
            # a point claimed only with quality -1 (outside) stays background
            keep = col_q > OUTSIDE_QUALITY
            gt_idx = col_gt[keep]
            prior_idx = cols[keep]
        return pairs_to_result(num_gts, num_priors, gt_boxes, gt_labels,
                               gt_idx, prior_idx, bboxes)
