"""DeFCN's hand-crafted one-to-one baseline "Anchor"."""
from typing import Optional

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData
from torch import Tensor

from .one2one_utils import (empty_result, gt_rows, pairs_to_result,
                            square_anchors)


@TASK_UTILS.register_module()
class One2OneAnchorAssigner(BaseAssigner):
    """Each GT takes the single anchor of highest IoU (RetinaNet-style
    anchors, one square anchor per location); a point wanted by several GTs
    goes to the highest IoU.

    The head is anchor-free, so the anchors are made from its points: the
    square of side ``anchor_scale * stride`` centred on the point (4 x the
    strides 8..128 gives DeFCN's sizes 32..512).

    Args:
        anchor_scale (float): anchor side in strides. Defaults to 4.
    """

    def __init__(self, anchor_scale: float = 4.0) -> None:
        self.anchor_scale = anchor_scale

    def point_anchors(self, priors: Tensor) -> Tensor:
        """(A, 4) points with strides -> (A, 4) square xyxy anchors."""
        return square_anchors(priors, self.anchor_scale)

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               **kwargs) -> AssignResult:
        """Assign by anchor IoU.

        Args:
            pred_instances (InstanceData): ``priors`` (A, 4) points with
                strides (``scores``/``bboxes`` are not used).
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): not used: ignore
                regions take no part in DeFCN's assignment.

        Returns:
            AssignResult: ``max_overlaps`` holds the anchor IoU.
        """
        priors = pred_instances.priors
        gt_boxes, gt_labels, num_gts = gt_rows(gt_instances)
        num_rows, num_priors = len(gt_boxes), len(priors)
        if num_rows == 0 or num_priors == 0:
            return empty_result(num_gts, num_priors, priors.device)
        anchors = self.point_anchors(priors)
        ious = bbox_overlaps(gt_boxes, anchors)  # (R, A)
        best_iou, best_anchor = ious.max(dim=1)
        claims = ious.new_full(ious.shape, -1.0)
        claims[torch.arange(num_rows), best_anchor] = best_iou
        col_iou, col_gt = claims.max(dim=0)
        prior_idx = (col_iou > -1).nonzero(as_tuple=True)[0]
        return pairs_to_result(num_gts, num_priors, gt_boxes, gt_labels,
                               col_gt[prior_idx], prior_idx, anchors)
