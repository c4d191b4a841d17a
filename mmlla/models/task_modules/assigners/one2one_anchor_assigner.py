"""DeFCN's hand-crafted one-to-one baseline "Anchor" (docs/algorithms.md
section 5)."""
from typing import Optional

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData
from torch import Tensor

from .utils import (column_winners, pairs_to_result, read_inputs,
                    row_best_claims, square_anchors)

# The value of an (anchor, GT) pair that the GT did not claim.
NO_CLAIM = -1.0


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
        inputs = read_inputs(
            'One2OneAnchorAssigner',
            pred_instances,
            gt_instances,
            predictions=False)
        if inputs.is_empty:
            return inputs.empty_result()
        anchors = self.point_anchors(inputs.priors)
        ious = bbox_overlaps(inputs.gt_boxes, anchors)  # (R, A)
        # each GT claims its best anchor; an anchor claimed by several GTs
        # goes to the highest IoU (IoUs are >= 0 > the -1 of no claim)
        gt_idx, prior_idx = column_winners(
            row_best_claims(ious, NO_CLAIM), NO_CLAIM)
        return pairs_to_result(inputs.num_gts, inputs.num_priors,
                               inputs.gt_boxes, inputs.gt_labels, gt_idx,
                               prior_idx, anchors)
