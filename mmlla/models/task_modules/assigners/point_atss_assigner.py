"""ATSS on the points of an anchor-free head (DeFCN's ATSS row)."""
from typing import Optional, Sequence

from mmdet.models.task_modules.assigners import (AssignResult, ATSSAssigner,
                                                 BaseAssigner)
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

from .one2one_utils import square_anchors


@TASK_UTILS.register_module()
class PointATSSAssigner(BaseAssigner):
    """ATSS positives for the points of an FCOS-style head, as DeFCN's ATSS
    row picks them: each point stands for one square anchor of side
    ``anchor_scale * stride`` centred on it, used only for the IoU. Per
    level the ``topk`` points closest to the GT centre are candidates; those
    whose anchor IoU is ``>=`` the mean + standard deviation (unbiased) of
    the candidates' IoUs and whose centre lies inside the GT box (all four
    distances > 0.01) are positive; a point wanted by several GTs goes to
    the highest IoU. The selection is mmdet's :class:`ATSSAssigner` (the
    rule of the ATSS paper's code); this class builds the anchors from the
    points and gives it the per-level counts. Ignore regions take no part
    (DeFCN removes them before assignment).

    Args:
        topk (int): candidates per level and GT. Defaults to 9.
        anchor_scale (float): anchor side in strides. Defaults to 8.
    """

    def __init__(self, topk: int = 9, anchor_scale: float = 8.0) -> None:
        self.topk = topk
        self.anchor_scale = anchor_scale
        self.atss = ATSSAssigner(topk=topk)

    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               num_level_priors: Optional[Sequence[int]] = None,
               **kwargs) -> AssignResult:
        """Assign GTs to points.

        Args:
            pred_instances (InstanceData): ``priors`` (A, 4) points with
                strides ``(x, y, stride_w, stride_h)``.
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): not used.
            num_level_priors (sequence[int]): points per level (required).

        Returns:
            AssignResult: ``gt_inds`` (A,) 0 background, k + 1 for GT k;
            ``max_overlaps`` the anchor IoU.
        """
        if num_level_priors is None:
            raise ValueError('PointATSSAssigner needs num_level_priors')
        anchors = square_anchors(pred_instances.priors, self.anchor_scale)
        return self.atss.assign(
            InstanceData(priors=anchors), list(num_level_priors),
            gt_instances)
