"""FCOS's one-to-many rule as an assigner (for "FCOS w/o centerness")."""
from typing import Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

from .utils import (FCOS_REGRESS_RANGES, check_level_priors, inside_prior,
                    max_side_distance, read_inputs, smallest_area_result)


@TASK_UTILS.register_module()
class FCOSStyleAssigner(BaseAssigner):
    """FCOS targets (the rule of mmdet's ``FCOSHead._get_targets_single``,
    which is not a separate assigner there): a point is positive for a GT
    when it lies in the GT's centre region (``center_sampling_radius`` x
    stride, clipped to the box; the whole box when 0) and its largest
    distance to the GT's sides is in its level's regression range; several
    GTs -> the smallest area.

    Args:
        center_sampling_radius (float): Defaults to 1.5.
        regress_ranges (sequence of 2-tuples): per level. FCOS's by default.
    """

    def __init__(self,
                 center_sampling_radius: float = 1.5,
                 regress_ranges: Sequence[Tuple[float, float]] = (
                     FCOS_REGRESS_RANGES)) -> None:
        self.center_sampling_radius = center_sampling_radius
        self.regress_ranges = regress_ranges

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               num_level_priors: Optional[Sequence[int]] = None,
               **kwargs) -> AssignResult:
        """Assign by FCOS's spatial and scale rules (predictions unused).

        Args:
            pred_instances (InstanceData): ``priors`` (A, 4).
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): not used: ignore
                regions take no part in DeFCN's assignment.
            num_level_priors (sequence[int]): points per level (required).

        Returns:
            AssignResult: as :class:`POTOAssigner`.
        """
        inputs = read_inputs(
            'FCOSStyleAssigner',
            pred_instances,
            gt_instances,
            predictions=False)
        if inputs.is_empty:
            return inputs.empty_result()
        check_level_priors('FCOSStyleAssigner', num_level_priors,
                           len(self.regress_ranges))
        priors, gt_boxes = inputs.priors, inputs.gt_boxes
        ranges = torch.cat([
            priors.new_tensor(r)[None].expand(n, 2)
            for n, r in zip(num_level_priors, self.regress_ranges)
        ])  # (A, 2)
        max_dist = max_side_distance(priors[None, :, :2],
                                     gt_boxes[:, None])  # (R, A)
        ok = inside_prior(priors, gt_boxes, self.center_sampling_radius) & \
            (max_dist >= ranges[None, :, 0]) & (max_dist <= ranges[None, :, 1])
        return smallest_area_result(ok, inputs.num_gts, gt_boxes,
                                    inputs.gt_labels, inputs.bboxes)
