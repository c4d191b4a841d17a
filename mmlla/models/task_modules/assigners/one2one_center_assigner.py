"""DeFCN's hand-crafted one-to-one baseline "Center"."""
from typing import Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

from .one2one_utils import empty_result, merge_ignore, pairs_to_result

INF = 1e8
FCOS_REGRESS_RANGES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512,
                                                                    INF))


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
            gt_instances_ignore (InstanceData, optional): ``bboxes`` (I, 4).
            num_level_priors (sequence[int]): points per level (required).

        Returns:
            AssignResult: as :class:`POTOAssigner`.
        """
        priors = pred_instances.priors
        gt_boxes, gt_labels, num_gts = merge_ignore(gt_instances,
                                                    gt_instances_ignore)
        num_rows, num_priors = len(gt_boxes), len(priors)
        if num_rows == 0 or num_priors == 0:
            return empty_result(num_gts, num_priors, priors.device)
        if num_level_priors is None or \
                len(num_level_priors) != len(self.regress_ranges):
            raise ValueError('One2OneCenterAssigner needs num_level_priors '
                             f'with {len(self.regress_ranges)} levels')
        xy = priors[:, :2]
        centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
        max_dist = torch.cat([xy[None] - gt_boxes[:, None, :2],
                              gt_boxes[:, None, 2:] - xy[None]],
                             dim=-1).max(dim=-1).values  # (R, A)
        areas = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (
            gt_boxes[:, 3] - gt_boxes[:, 1])
        cost = areas.new_full((num_rows, num_priors), INF)
        start = 0
        rows = torch.arange(num_rows, device=priors.device)
        for num, (lo, hi) in zip(num_level_priors, self.regress_ranges):
            if num > 0:
                dist = torch.cdist(centers, xy[start:start + num])
                nearest = start + dist.argmin(dim=1)
                ok = (max_dist[rows, nearest] >= lo) & (
                    max_dist[rows, nearest] <= hi)
                cost[rows[ok], nearest[ok]] = areas[ok]
            start += num
        min_area, col_gt = cost.min(dim=0)
        prior_idx = (min_area < INF).nonzero(as_tuple=True)[0]
        return pairs_to_result(num_gts, num_priors, gt_boxes, gt_labels,
                               col_gt[prior_idx], prior_idx,
                               pred_instances.get('bboxes', None))
