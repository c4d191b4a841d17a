"""DeFCN's hand-crafted one-to-one baseline "Center" (docs/algorithms.md
section 5)."""
from typing import Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

from .utils import (FCOS_REGRESS_RANGES, check_level_priors,
                    max_side_distance, read_inputs, smallest_area_result)


@TASK_UTILS.register_module()
class One2OneCenterAssigner(BaseAssigner):
    """Per FPN level, the one point closest to the GT centre is a candidate;
    it is kept when its largest distance to the GT's sides lies in the
    level's FCOS regression range; a point wanted by several GTs goes to the
    GT of smallest area.

    Points need not be inside the box (DeFCN's rule); in practice only the
    level whose range fits the GT keeps its candidate.

    Args:
        regress_ranges (sequence of 2-tuples): per level ``[lo, hi]`` on the
            maximum regression distance. Defaults to FCOS's.
    """

    def __init__(self,
                 regress_ranges: Sequence[Tuple[float, float]] = (
                     FCOS_REGRESS_RANGES)) -> None:
        self.regress_ranges = regress_ranges

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               num_level_priors: Optional[Sequence[int]] = None,
               **kwargs) -> AssignResult:
        """Assign by distance to the GT centre.

        Args:
            pred_instances (InstanceData): ``priors`` (A, 4) points with
                strides.
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): not used: ignore
                regions take no part in DeFCN's assignment.
            num_level_priors (sequence[int]): points per level (required).

        Returns:
            AssignResult: as :class:`POTOAssigner`.
        """
        inputs = read_inputs(
            'One2OneCenterAssigner',
            pred_instances,
            gt_instances,
            predictions=False)
        if inputs.is_empty:
            return inputs.empty_result()
        check_level_priors('One2OneCenterAssigner', num_level_priors,
                           len(self.regress_ranges))
        priors, gt_boxes = inputs.priors, inputs.gt_boxes
        num_rows, num_priors = inputs.num_rows, inputs.num_priors
        xy = priors[:, :2]
        centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
        ok = torch.zeros((num_rows, num_priors), dtype=torch.bool,
                         device=priors.device)
        rows = torch.arange(num_rows, device=priors.device)
        start = 0
        for num, (lo, hi) in zip(num_level_priors, self.regress_ranges):
            if num > 0:
                # per level, the one point closest to each GT centre, kept
                # when its regression size fits the level's range
                # squared distances written out: torch.cdist may take a
                # matrix-product shortcut whose rounding breaks near-ties
                level_xy = xy[start:start + num]
                dist2 = (centers[:, None, 0] - level_xy[None, :, 0])**2 + \
                    (centers[:, None, 1] - level_xy[None, :, 1])**2
                nearest = start + dist2.argmin(dim=1)
                size = max_side_distance(xy[nearest], gt_boxes)  # (R,)
                ok[rows, nearest] = (size >= lo) & (size <= hi)
            start += num
        return smallest_area_result(ok, inputs.num_gts, gt_boxes,
                                    inputs.gt_labels, inputs.bboxes)
