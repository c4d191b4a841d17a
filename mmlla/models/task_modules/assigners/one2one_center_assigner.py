"""DeFCN's hand-crafted one-to-one baseline "Center"."""
from typing import Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

from .one2one_utils import (INF, check_level_priors, empty_result,
                            max_side_distance, gt_rows,
                            smallest_area_result)

FCOS_REGRESS_RANGES = ((-1, 64), (64, 128), (128, 256), (256, 512),
                       (512, INF))


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
        priors = pred_instances.priors
        gt_boxes, gt_labels, num_gts = gt_rows(gt_instances)
        num_rows, num_priors = len(gt_boxes), len(priors)
        if num_rows == 0 or num_priors == 0:
            return empty_result(num_gts, num_priors, priors.device)
        check_level_priors('One2OneCenterAssigner', num_level_priors,
                           self.regress_ranges)
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
        return smallest_area_result(ok, num_gts, gt_boxes, gt_labels,
                                    pred_instances.get('bboxes', None))
