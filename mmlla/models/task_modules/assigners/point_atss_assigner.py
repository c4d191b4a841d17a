"""ATSS on the points of an anchor-free head (DeFCN's ATSS row)."""
from typing import Optional, Sequence

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData

from .utils import (INSIDE_MARGIN, check_level_priors, column_winners,
                    inside_sides, pairs_to_result, read_inputs,
                    square_anchors, topk_first)


@TASK_UTILS.register_module()
class PointATSSAssigner(BaseAssigner):
    """ATSS positives for the points of an FCOS-style head, as DeFCN's ATSS
    row picks them: each point stands for one square anchor of side
    ``anchor_scale * stride`` centred on it, used only for the IoU. Per
    level the ``topk`` points closest to the GT centre are candidates (ties:
    the first index); those whose anchor IoU is ``>=`` the mean + standard
    deviation (unbiased) of the candidates' IoUs and whose point lies inside
    the GT box (all four distances > 0.01) are positive; a point wanted by
    several GTs goes to the highest IoU (the first GT on ties). Ignore
    regions take no part (DeFCN removes them before assignment).

    This is the rule of mmdet's ``ATSSAssigner`` (the ATSS paper's code),
    written out here because ``torch.topk`` there leaves the choice among
    equally distant points unspecified (GT centres exactly between grid
    points are common), where this project takes the first index.

    Args:
        topk (int): candidates per level and GT. Defaults to 9.
        anchor_scale (float): anchor side in strides. Defaults to 8.
    """

    def __init__(self, topk: int = 9, anchor_scale: float = 8.0) -> None:
        self.topk = topk
        self.anchor_scale = anchor_scale

    @torch.no_grad()
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
            gt_instances_ignore (InstanceData, optional): not used: ignore
                regions take no part in DeFCN's assignment.
            num_level_priors (sequence[int]): points per level (required).

        Returns:
            AssignResult: ``gt_inds`` (A,) 0 background, k + 1 for GT k;
            ``max_overlaps`` the anchor IoU of positives (0 elsewhere).
        """
        inputs = read_inputs(
            'PointATSSAssigner',
            pred_instances,
            gt_instances,
            predictions=False)
        check_level_priors(
            'PointATSSAssigner',
            num_level_priors,
            num_priors=inputs.num_priors)
        if inputs.is_empty:
            return inputs.empty_result()
        priors, gt_boxes = inputs.priors, inputs.gt_boxes
        num_gts, num_priors = inputs.num_gts, inputs.num_priors

        anchors = square_anchors(priors, self.anchor_scale)
        overlaps = bbox_overlaps(gt_boxes, anchors)  # (G, A)
        xs, ys = priors[:, 0], priors[:, 1]
        cx = (gt_boxes[:, 0:1] + gt_boxes[:, 2:3]) / 2
        cy = (gt_boxes[:, 1:2] + gt_boxes[:, 3:4]) / 2

        candidates = []
        start = 0
        for num in num_level_priors:
            k = min(self.topk, num)
            if k > 0:
                # squared centre distances (same order as the distances)
                dist2 = (xs[None, start:start + num] - cx)**2 + \
                    (ys[None, start:start + num] - cy)**2
                candidates.append(start +
                                  topk_first(dist2, k, largest=False))
            start += num
        candidates = torch.cat(candidates, dim=1)  # (G, K)
        cand_iou = overlaps.gather(1, candidates)
        threshold = cand_iou.mean(dim=1, keepdim=True) + cand_iou.std(
            dim=1, keepdim=True)
        cand_x, cand_y = xs[candidates], ys[candidates]
        inside = inside_sides(cand_x, cand_y,
                              *(gt_boxes[:, i:i + 1] for i in range(4)),
                              INSIDE_MARGIN)
        is_pos = (cand_iou >= threshold) & inside

        # a point positive for several GTs goes to the highest IoU
        masked = torch.full_like(overlaps, -float('inf'))
        rows = torch.arange(num_gts, device=priors.device)[:, None].expand_as(
            candidates)
        masked[rows[is_pos], candidates[is_pos]] = cand_iou[is_pos]
        gt_idx, prior_idx = column_winners(masked, -float('inf'))
        return pairs_to_result(num_gts, num_priors, gt_boxes,
                               inputs.gt_labels, gt_idx, prior_idx, anchors)
