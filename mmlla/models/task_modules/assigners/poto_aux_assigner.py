"""The one-to-many assignment of DeFCN's auxiliary loss."""
from typing import List, Optional

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

from .utils import (column_winners, inside_prior, pairs_to_result,
                    prediction_quality, read_inputs, topk_first)

NOT_POSITIVE = -1.0


@TASK_UTILS.register_module()
class POTOAuxAssigner(BaseAssigner):
    """One-to-many assignment for DeFCN's auxiliary loss (ATSS-like on
    prediction quality; docs/algorithms.md section 4).

    Per GT and per FPN level the ``topk`` points of highest quality (POTO's
    formula, on probabilities *without* the 3DMF filter; ties to the first
    index) are candidates; the GT's threshold is the mean + standard
    deviation (unbiased, torch's default) of its candidates' qualities
    pooled over the levels; a candidate is positive when its
    quality reaches the threshold and it lies strictly inside the GT box. A
    point claimed by several GTs goes to the highest quality. Ignore regions
    take no part (DeFCN removes them before assignment).

    Args:
        alpha (float): IoU weight in the quality. Defaults to 0.8.
        topk (int): candidates per GT and level. Defaults to 9.
    """

    def __init__(self, alpha: float = 0.8, topk: int = 9) -> None:
        self.alpha = alpha
        self.topk = topk

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               num_level_priors: Optional[List[int]] = None,
               **kwargs) -> AssignResult:
        """Assign GTs to points (one-to-many).

        Args:
            pred_instances (InstanceData): ``priors`` (A, 4), ``scores``
                (A, C) probabilities, ``bboxes`` (A, 4) xyxy.
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): not used: ignore
                regions take no part in DeFCN's assignment.
            num_level_priors (list[int], optional): points per FPN level, in
                order; one level when omitted.

        Returns:
            AssignResult: as :class:`POTOAssigner`.
        """
        inputs = read_inputs('POTOAuxAssigner', pred_instances,
                             gt_instances)
        if inputs.is_empty:
            return inputs.empty_result()
        priors, bboxes = inputs.priors, inputs.bboxes
        gt_boxes, gt_labels = inputs.gt_boxes, inputs.gt_labels
        num_priors = inputs.num_priors
        if num_level_priors is None:
            num_level_priors = [num_priors]

        quality = prediction_quality(inputs.scores, bboxes, gt_boxes,
                                     gt_labels, self.alpha)  # (R, A)
        candidates = []
        start = 0
        for num in num_level_priors:
            k = min(self.topk, num)
            if k > 0:
                # ties (e.g. the many 0 qualities of boxes missing the GT)
                # go to the first index
                candidates.append(
                    start + topk_first(quality[:, start:start + num], k))
            start += num
        candidates = torch.cat(candidates, dim=1)  # (R, sum k)
        cand_q = quality.gather(1, candidates)
        threshold = cand_q.mean(dim=1, keepdim=True) + cand_q.std(
            dim=1, keepdim=True)
        is_candidate = torch.zeros_like(quality, dtype=torch.bool)
        is_candidate.scatter_(1, candidates, True)
        positive = is_candidate & (quality >= threshold) & inside_prior(
            priors, gt_boxes)
        masked = torch.where(positive, quality,
                             quality.new_tensor(NOT_POSITIVE))
        # a point positive for several GTs goes to the highest quality
        gt_idx, prior_idx = column_winners(masked, NOT_POSITIVE)
        return pairs_to_result(inputs.num_gts, num_priors, gt_boxes,
                               gt_labels, gt_idx, prior_idx, bboxes)
