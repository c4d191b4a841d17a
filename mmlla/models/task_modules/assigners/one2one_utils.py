"""Helpers shared by the assigners: the competitors (ground truths, and
for LLA the ignore regions), spatial priors of points, and turning matched
pairs into an :obj:`AssignResult`.

Ignore regions take part in LLA only (they compete for points like ground
truths, with class 0, and a point that goes to one is marked ``-1``). DeFCN
removes every ignore instance before assignment (POTO, its auxiliary loss,
the one-to-one baselines, its FCOS and ATSS rows): those assigners take the
ground truths alone (:func:`gt_rows`) and ignore ``gt_instances_ignore``.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from mmengine.structures import InstanceData
from torch import Tensor

# topk_first is defined with the sparse helpers (which need it) and
# re-exported here, where the assigners have always imported it from
from .sparse_utils import grid_levels, grid_pairs, topk_first  # noqa: F401

IGNORE_CLASS = 0
# Up to this many (row, point) pairs R x A the dense paths (prior mask,
# scipy's dense solver, LLA's whole cost matrix) are the cheaper ones
# (measured on a 2-core CPU: even at about 25 GTs x 22400 points); above
# it the sparse ones are used.
SPARSE_MIN_PAIRS = 2**19


def sparse_pays(num_rows: int, num_points: int) -> bool:
    """Whether an R x A problem is large enough for the sparse paths."""
    return num_rows * num_points > SPARSE_MIN_PAIRS
# Cost of a (competitor, point) pair that may not be matched.
INF = 1e8


def check_finite(name: str, tensor: Optional[Tensor]) -> None:
    """Raise a clear ``ValueError`` when ``tensor`` holds NaN or Inf."""
    if tensor is None or tensor.numel() == 0:
        return
    # One reduction first (a NaN or Inf anywhere makes the sum non-finite);
    # the element-wise test, which allocates a mask as large as the tensor,
    # only confirms a non-finite sum (a finite tensor can overflow it).
    if not bool(torch.isfinite(tensor.sum())) and \
            not bool(torch.isfinite(tensor).all()):
        raise ValueError(
            f'{name} contains non-finite values (NaN or Inf); the '
            'assignment is undefined. Check the learning rate / loss scale.')


def gt_rows(gt_instances: InstanceData) -> Tuple[Tensor, Tensor, int]:
    """The ground truths alone as competitors (DeFCN's rows: ignore regions
    are removed before assignment, their points are ordinary candidates and
    negatives).

    Returns:
        tuple: boxes (G, 4), labels (G,) and G.
    """
    boxes = get_box_tensor(gt_instances.bboxes)
    return boxes, gt_instances.labels, len(boxes)


def square_anchors(priors: Tensor, anchor_scale: float) -> Tensor:
    """(..., 4) points with strides ``(x, y, stride_w, stride_h)`` ->
    (..., 4) xyxy squares of side ``anchor_scale * stride`` centred on the
    points (the anchors of DeFCN's Anchor and ATSS rows)."""
    half_w = priors[..., 2] * anchor_scale / 2
    half_h = priors[..., 3] * anchor_scale / 2
    return torch.stack([
        priors[..., 0] - half_w, priors[..., 1] - half_h,
        priors[..., 0] + half_w, priors[..., 1] + half_h
    ], dim=-1)


def merge_ignore(
        gt_instances: InstanceData,
        gt_instances_ignore: Optional[InstanceData] = None
) -> Tuple[Tensor, Tensor, int]:
    """Stack ground truths and ignore regions into one list of competitors.

    Args:
        gt_instances (InstanceData): ``bboxes`` (G, 4) and ``labels`` (G,).
        gt_instances_ignore (InstanceData, optional): ``bboxes`` (I, 4).

    Returns:
        tuple: boxes (G + I, 4), labels (G + I,) with class 0 for the ignore
        regions, and G (rows ``>= G`` are ignore regions).
    """
    boxes = gt_instances.bboxes
    labels = gt_instances.labels
    num_gts = len(boxes)
    if gt_instances_ignore is not None and len(gt_instances_ignore) > 0:
        ign = gt_instances_ignore.bboxes.to(boxes)
        boxes = torch.cat([boxes, ign], dim=0)
        labels = torch.cat(
            [labels, labels.new_full((len(ign), ), IGNORE_CLASS)])
    return boxes, labels, num_gts


def inside_prior(priors: Tensor,
                 gt_boxes: Tensor,
                 center_radius: float = 0.0,
                 margin: float = 0.0) -> Tensor:
    """Which points lie strictly inside each GT's spatial prior.

    Args:
        priors (Tensor): (A, 4) points (x, y, stride_w, stride_h).
        gt_boxes (Tensor): (R, 4) xyxy.
        center_radius (float): 0 means the whole box; otherwise the region of
            half-size ``center_radius * stride`` around the box centre,
            clipped to the box (FCOS / DeFCN centre sampling).
        margin (float): distances must exceed this value.

    Returns:
        Tensor: bool (R, A).
    """
    if center_radius <= 0:
        return _inside_boxes(priors, *prior_region(gt_boxes, 0.0, 0.0),
                             margin)
    # The centre region depends on the stride only: clip the (R, 1) boxes
    # once per run of equal strides (a level) instead of the (R, A) matrix.
    strides, counts = torch.unique_consecutive(
        priors[:, 2], return_counts=True)
    parts, start = [], 0
    for stride, count in zip(strides.tolist(), counts.tolist()):
        parts.append(
            _inside_boxes(priors[start:start + count],
                          *prior_region(gt_boxes, stride, center_radius),
                          margin))
        start += count
    return torch.cat(parts, dim=1)


def prior_pairs(priors: Tensor,
                gt_boxes: Tensor,
                center_radius: float = 0.0,
                margin: float = 0.0) -> Tuple[Tensor, Tensor]:
    """The (GT, point) pairs inside the spatial prior: exactly
    ``inside_prior(priors, gt_boxes, center_radius, margin).nonzero()``,
    found from the grid cells each prior covers (time and memory in the
    number of pairs, not R x A) when the points are FPN grids; from the
    dense mask otherwise (small problems, points that are no grid,
    non-finite boxes).

    Args:
        priors (Tensor): (A, 4) points (x, y, stride_w, stride_h).
        gt_boxes (Tensor): (R, 4) xyxy.
        center_radius (float): as :func:`inside_prior`.
        margin (float): as :func:`inside_prior`, >= 0.

    Returns:
        tuple: ``rows`` (P,) and ``points`` (P,) long, sorted by row, then
        point.
    """
    levels = None
    if priors.size(1) >= 4 and sparse_pays(len(gt_boxes), len(priors)) \
            and bool(torch.isfinite(gt_boxes).all()):
        levels = grid_levels(priors[:, :2], priors[:, 2:4])
    if levels is None:
        return inside_prior(priors, gt_boxes, center_radius,
                            margin).nonzero(as_tuple=True)
    return grid_pairs(
        priors[:, :2], levels,
        lambda lvl: prior_region(gt_boxes, lvl.stride, center_radius),
        margin)


def prior_region(gt_boxes: Tensor, stride: float,
                 center_radius: float) -> Tuple[Tensor, ...]:
    """The sides ``x1, y1, x2, y2`` (each (R, 1)) of each GT's spatial prior
    for the points of one stride: the box itself when ``center_radius <=
    0``, else the square of half-size ``center_radius * stride`` around the
    box centre clipped to the box. The one definition that the dense mask
    (:func:`inside_prior`) and the sparse pairs (``sparse_utils``) share,
    so that both test a point with the same float operations."""
    x1, y1, x2, y2 = (gt_boxes[:, i:i + 1] for i in range(4))
    if center_radius <= 0:
        return x1, y1, x2, y2
    radius = stride * center_radius
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return (torch.maximum(cx - radius, x1), torch.maximum(cy - radius, y1),
            torch.minimum(cx + radius, x2), torch.minimum(cy + radius, y2))


def _inside_boxes(priors: Tensor, x1: Tensor, y1: Tensor, x2: Tensor,
                  y2: Tensor, margin: float) -> Tensor:
    """(R, A) all four distances of each point to (R, 1) box sides > margin
    (four comparisons: no (R, A, 4) stack of distances)."""
    xs, ys = priors[None, :, 0], priors[None, :, 1]
    return ((xs - x1 > margin) & (ys - y1 > margin) & (x2 - xs > margin)
            & (y2 - ys > margin))


def check_level_priors(name: str, num_level_priors: Optional[Sequence[int]],
                       regress_ranges: Sequence) -> None:
    """The scale-range assigners need the number of points per level."""
    if num_level_priors is None or \
            len(num_level_priors) != len(regress_ranges):
        raise ValueError(f'{name} needs num_level_priors with '
                         f'{len(regress_ranges)} levels')


def max_side_distance(points: Tensor, boxes: Tensor) -> Tensor:
    """FCOS's regression target size: the largest distance from a point to
    a side of a box, ``max(x - x1, y - y1, x2 - x, y2 - y)``.

    Args:
        points (Tensor): (..., 2) points, broadcastable against ``boxes``.
        boxes (Tensor): (..., 4) xyxy boxes.

    Returns:
        Tensor: the broadcast shape without the last dimension.
    """
    return torch.maximum(
        torch.maximum(points[..., 0] - boxes[..., 0],
                      points[..., 1] - boxes[..., 1]),
        torch.maximum(boxes[..., 2] - points[..., 0],
                      boxes[..., 3] - points[..., 1]))


def smallest_area_result(cost_ok: Tensor, num_gts: int, gt_boxes: Tensor,
                         gt_labels: Tensor,
                         pred_bboxes: Optional[Tensor]) -> AssignResult:
    """Every point allowed to several competitors goes to the one of
    smallest area (FCOS's rule for ambiguous points).

    Args:
        cost_ok (Tensor): (R, A) bool, which (competitor, point) pairs are
            allowed.
        num_gts (int): G; competitors ``>= G`` are ignore regions.
        gt_boxes (Tensor): (R, 4).
        gt_labels (Tensor): (R,).
        pred_bboxes (Tensor, optional): (A, 4), for ``max_overlaps``.
    """
    areas = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (
        gt_boxes[:, 3] - gt_boxes[:, 1])
    cost = torch.where(cost_ok, areas[:, None], areas.new_tensor(INF))
    min_area, col_gt = cost.min(dim=0)
    prior_idx = (min_area < INF).nonzero(as_tuple=True)[0]
    return pairs_to_result(num_gts, cost_ok.size(1), gt_boxes, gt_labels,
                           col_gt[prior_idx], prior_idx, pred_bboxes)


def empty_result(num_gts: int, num_priors: int, device) -> AssignResult:
    """Every point background (no competitor or no point)."""
    return AssignResult(
        num_gts,
        torch.zeros(num_priors, dtype=torch.long, device=device),
        torch.zeros(num_priors, device=device),
        torch.full((num_priors, ), -1, dtype=torch.long, device=device))


def pairs_to_result(num_gts: int, num_priors: int, gt_boxes: Tensor,
                    gt_labels: Tensor, gt_idx: Tensor, prior_idx: Tensor,
                    pred_bboxes: Optional[Tensor]) -> AssignResult:
    """Build an :obj:`AssignResult` from matched (competitor, point) pairs.

    Args:
        num_gts (int): G; competitors ``>= G`` are ignore regions.
        num_priors (int): A.
        gt_boxes (Tensor): (R, 4) competitors' boxes.
        gt_labels (Tensor): (R,) competitors' labels.
        gt_idx (Tensor): (M,) competitor index of each pair.
        prior_idx (Tensor): (M,) point index of each pair (distinct).
        pred_bboxes (Tensor, optional): (A, 4) boxes whose IoU with the
            assigned GT goes to ``max_overlaps`` (as mmdet assigners do).

    Returns:
        AssignResult: ``gt_inds`` 0 background, k + 1 for GT k, -1 ignore;
        ``labels`` -1 except for positives; ``max_overlaps`` 0 except for
        matched points.
    """
    device = gt_boxes.device
    result = empty_result(num_gts, num_priors, device)
    if gt_idx.numel() == 0:
        return result
    gt_idx = gt_idx.to(device=device, dtype=torch.long)
    prior_idx = prior_idx.to(device=device, dtype=torch.long)
    is_gt = gt_idx < num_gts
    result.gt_inds[prior_idx] = torch.where(is_gt, gt_idx + 1,
                                            torch.full_like(gt_idx, -1))
    result.labels[prior_idx[is_gt]] = gt_labels[gt_idx[is_gt]].long()
    if pred_bboxes is not None:
        result.max_overlaps[prior_idx] = bbox_overlaps(
            pred_bboxes[prior_idx].float(),
            gt_boxes[gt_idx].float(),
            is_aligned=True).to(result.max_overlaps)
    return result


def prediction_quality(scores: Tensor,
                       bboxes: Tensor,
                       gt_boxes: Tensor,
                       gt_labels: Tensor,
                       alpha: float,
                       aligned: bool = False) -> Tensor:
    """DeFCN's quality ``p[a, c_g] ** (1 - alpha) * IoU(box[a], g) ** alpha``.

    Args:
        scores (Tensor): (K, C) probabilities of the K points considered.
        bboxes (Tensor): (K, 4) their predicted xyxy boxes.
        gt_boxes (Tensor): (R, 4).
        gt_labels (Tensor): (R,).
        alpha (float): weight of the IoU term.
        aligned (bool): pairs (point k, GT k) only, R == K.

    Returns:
        Tensor: (R, K) quality in [0, 1], or (K,) when ``aligned``.
    """
    if aligned:
        prob = scores.gather(1, gt_labels.long()[:, None])[:, 0]
        iou = bbox_overlaps(gt_boxes, bboxes, is_aligned=True)
        return prob.clamp(min=0)**(1 - alpha) * iou.clamp(min=0)**alpha
    prob = scores[:, gt_labels.long()].t()
    iou = bbox_overlaps(gt_boxes, bboxes)
    return prob.clamp(min=0)**(1 - alpha) * iou.clamp(min=0)**alpha
