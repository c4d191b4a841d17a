"""Helpers shared by every assigner of this package.

* reading an ``assign`` call (:func:`read_inputs`): the predictions, their
  finiteness, the competitors (ground truths, plus the ignore regions for
  LLA) and the empty case;
* building an :obj:`AssignResult` from matched pairs (:func:`pairs_to_result`,
  :func:`empty_result`) and reducing a claim matrix to them
  (:func:`row_best_claims`, :func:`column_winners`);
* the focal terms and the one-hot class-cost identity (LLA and the
  "Foreground loss" baseline), DeFCN's quality (POTO and its auxiliary loss);
* spatial priors of points (:func:`inside_prior`), square anchors made from
  points, FCOS's scale ranges and :func:`topk_first`.

Ignore regions take part in LLA only (they compete for points like ground
truths, with class 0, and a point that goes to one is marked ``-1``). DeFCN
removes every ignore instance before assignment (POTO, its auxiliary loss,
the one-to-one baselines, its FCOS and ATSS rows): those assigners read the
ground truths alone and ignore ``gt_instances_ignore`` (docs/algorithms.md
section 2, step 5).

The sparse (row, point) pairs and one-to-one matchings are in
``sparse_utils``.
"""
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.structures.bbox import BaseBoxes, bbox_overlaps, get_box_tensor
from mmengine.structures import InstanceData
from torch import Tensor

# Class of the ignore regions when they compete for points like GTs (LLA).
IGNORE_CLASS = 0
# Cost of a (competitor, point) pair that may not be matched, and the upper
# end of FCOS's last regression range.
INF = 1e8
# A point is inside a box when its four distances to the sides exceed this
# (LLA's spatial prior and ATSS's positives; POTO's prior has no margin).
INSIDE_MARGIN = 0.01
# Lower bound of the probabilities inside the focal loss's logs, so that a
# saturated sigmoid (p == 0 or p == 1 in float32) still gives a finite cost.
PROB_EPS = 1e-12
# FCOS's per-level ranges of the largest point-to-side distance, P3..P7.
FCOS_REGRESS_RANGES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512,
                                                                     INF))
# What ``pred_instances.scores`` hold: probabilities (LLAHead, POTOHead,
# LLARetinaHead, YOLOXHead) or classification logits (RTMDetHead,
# DDODHead).
SCORE_TYPES = ('probs', 'logits')
# What (A, 4) tensor priors are: points with strides ``(x, y, stride_w,
# stride_h)`` or xyxy anchors. ``'auto'`` guesses from the values (anchors
# exactly when every row has x2 > x1 and y2 > y1); configs state the type.
PRIOR_TYPES = ('point', 'anchor', 'auto')


def check_score_type(score_type: str) -> str:
    """``score_type`` itself, or a ``ValueError`` naming the choices."""
    if score_type not in SCORE_TYPES:
        raise ValueError(f'score_type must be one of {SCORE_TYPES}, '
                         f'got {score_type!r}')
    return score_type


def check_prior_type(prior_type: str) -> str:
    """``prior_type`` itself, or a ``ValueError`` naming the choices."""
    if prior_type not in PRIOR_TYPES:
        raise ValueError(f'prior_type must be one of {PRIOR_TYPES}, '
                         f'got {prior_type!r}')
    return prior_type


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


class AssignInputs(NamedTuple):
    """What an ``assign`` call reads (see :func:`read_inputs`).

    Attributes:
        priors (Tensor | BaseBoxes): (A, 2) or (A, 4) priors, as passed.
        scores (Tensor, optional): (A, C) scores; None when not read.
        bboxes (Tensor, optional): (A, 4) xyxy predicted boxes; None when
            the head passed none and the assigner does not need them.
        gt_boxes (Tensor): (R, 4) xyxy competitors' boxes.
        gt_labels (Tensor): (R,) competitors' labels.
        num_gts (int): G; competitors ``>= G`` are ignore regions.
    """
    priors: Union[Tensor, BaseBoxes]
    scores: Optional[Tensor]
    bboxes: Optional[Tensor]
    gt_boxes: Tensor
    gt_labels: Tensor
    num_gts: int

    @property
    def num_rows(self) -> int:
        """R, the number of competitors."""
        return len(self.gt_boxes)

    @property
    def num_priors(self) -> int:
        """A, the number of priors."""
        return len(self.priors)

    @property
    def is_empty(self) -> bool:
        """No competitor or no prior: every prior is background."""
        return self.num_rows == 0 or self.num_priors == 0

    def empty_result(self) -> AssignResult:
        """The all-background result (:func:`empty_result`)."""
        return empty_result(self.num_gts, self.num_priors,
                            self.priors.device)


def read_inputs(name: str,
                pred_instances: InstanceData,
                gt_instances: InstanceData,
                gt_instances_ignore: Optional[InstanceData] = None,
                *,
                predictions: bool = True,
                ignore_regions: bool = False) -> AssignInputs:
    """The opening of every ``assign``: check the call, read the
    predictions, refuse NaN / Inf in them and stack the competitors.

    Args:
        name (str): the assigner's class name, for the messages.
        pred_instances (InstanceData): ``priors``, and ``scores`` (A, C) and
            ``bboxes`` (A, 4) when ``predictions``; otherwise an optional
            ``bboxes`` (for ``max_overlaps`` only) is read, unchecked.
        gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
        gt_instances_ignore (InstanceData, optional): ``bboxes`` (I, 4);
            read only when ``ignore_regions``.
        predictions (bool): the assigner ranks the head's predictions.
        ignore_regions (bool): the ignore regions compete like GTs (LLA,
            :func:`merge_ignore`); otherwise the GTs alone
            (:func:`gt_rows`).

    Returns:
        AssignInputs: the priors, predictions and competitors.
    """
    if not isinstance(gt_instances, InstanceData):
        raise TypeError(
            f'{name}.assign(pred_instances, gt_instances, '
            'gt_instances_ignore=None, num_level_priors=None) got '
            f'{type(gt_instances).__name__} as gt_instances: ATSSHead-style '
            'heads pass num_level_priors positionally before the ground '
            'truths' + (
                ' and no predictions; use a head that passes scores and '
                'bboxes (LLAHead, LLARetinaHead, POTOHead, YOLOXHead; '
                'RTMDetHead or DDODHead with score_type="logits")'
                if predictions else '; pass num_level_priors by keyword'))
    scores = None
    bboxes = pred_instances.get('bboxes', None)
    if predictions:
        for key in ('scores', 'bboxes'):
            if key not in pred_instances:
                raise ValueError(
                    f'{name} needs pred_instances.{key}: the head must '
                    'pass its (detached) predictions to the assigner, as '
                    'LLAHead, LLARetinaHead, POTOHead or YOLOXHead do')
        scores = pred_instances.scores
        bboxes = get_box_tensor(bboxes)
        # one host sync for both tensors (a NaN or Inf in either makes the
        # sum non-finite); check_finite then tells which one, and whether
        # it really is
        if not bool(torch.isfinite(scores.sum() + bboxes.sum())):
            check_finite('pred_instances.scores', scores)
            check_finite('pred_instances.bboxes', bboxes)
    if ignore_regions:
        gt_boxes, gt_labels, num_gts = merge_ignore(gt_instances,
                                                    gt_instances_ignore)
    else:
        gt_boxes, gt_labels, num_gts = gt_rows(gt_instances)
    return AssignInputs(pred_instances.priors, scores, bboxes, gt_boxes,
                        gt_labels, num_gts)


def gt_rows(gt_instances: InstanceData) -> Tuple[Tensor, Tensor, int]:
    """The ground truths alone as competitors (DeFCN's rows: ignore regions
    are removed before assignment, their points are ordinary candidates and
    negatives).

    Returns:
        tuple: boxes (G, 4), labels (G,) and G.
    """
    boxes = get_box_tensor(gt_instances.bboxes)
    return boxes, gt_instances.labels, len(boxes)


def merge_ignore(
        gt_instances: InstanceData,
        gt_instances_ignore: Optional[InstanceData] = None
) -> Tuple[Tensor, Tensor, int]:
    """Stack ground truths and ignore regions into one list of competitors
    (docs/algorithms.md section 1, step 6).

    Args:
        gt_instances (InstanceData): ``bboxes`` (G, 4) and ``labels`` (G,).
        gt_instances_ignore (InstanceData, optional): ``bboxes`` (I, 4).

    Returns:
        tuple: boxes (G + I, 4), labels (G + I,) with class 0 for the ignore
        regions, and G (rows ``>= G`` are ignore regions).
    """
    boxes = get_box_tensor(gt_instances.bboxes)
    labels = gt_instances.labels
    num_gts = len(boxes)
    if gt_instances_ignore is not None and len(gt_instances_ignore) > 0:
        ign = get_box_tensor(gt_instances_ignore.bboxes).to(boxes)
        boxes = torch.cat([boxes, ign], dim=0)
        labels = torch.cat(
            [labels, labels.new_full((len(ign), ), IGNORE_CLASS)])
    return boxes, labels, num_gts


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


def row_best_claims(values: Tensor, fill: float) -> Tensor:
    """Each row claims its best column: (R, N) ``values`` -> (R, N) holding
    each row's maximum at its argmax and ``fill`` elsewhere."""
    best, col = values.max(dim=1)
    claims = values.new_full(values.shape, fill)
    claims[torch.arange(len(values), device=values.device), col] = best
    return claims


def column_winners(values: Tensor,
                   threshold: float,
                   largest: bool = True) -> Tuple[Tensor, Tensor]:
    """Give every column to its best row, keeping the columns whose best
    value beats ``threshold`` (the column reduction that ends the
    many-to-one assigners: conflicts go to the best claim).

    Args:
        values (Tensor): (R, N) claims; entries that are no claim hold
            ``threshold`` or worse.
        threshold (float): a column's best value must exceed it (fall below
            it when ``largest`` is False).
        largest (bool): the best is the largest (True) or smallest value.

    Returns:
        tuple: ``rows`` (M,) and ``cols`` (M,) long, the winning row of each
        kept column, columns ascending (the first row on a tie, as
        ``Tensor.max(dim=0)``).
    """
    if largest:
        best, row = values.max(dim=0)
        keep = best > threshold
    else:
        best, row = values.min(dim=0)
        keep = best < threshold
    cols = keep.nonzero(as_tuple=True)[0]
    return row[cols], cols


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
    gt_idx, prior_idx = column_winners(cost, INF, largest=False)
    return pairs_to_result(num_gts, cost_ok.size(1), gt_boxes, gt_labels,
                           gt_idx, prior_idx, pred_bboxes)


def focal_terms(prob: Tensor,
                log_p: Tensor,
                log_not_p: Tensor,
                alpha: float,
                gamma: float,
                not_prob: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """The sigmoid focal loss of each score against target 1 and against
    target 0: ``FLpos(p) = -alpha (1 - p)^gamma log p`` and ``FLneg(p) =
    -(1 - alpha) p^gamma log(1 - p)`` (docs/algorithms.md section 1, step
    2), element-wise, from the given probabilities and logs.

    Args:
        prob (Tensor): probabilities ``p``.
        log_p (Tensor): ``log p``.
        log_not_p (Tensor): ``log(1 - p)``.
        alpha (float): focal alpha.
        gamma (float): focal gamma.
        not_prob (Tensor, optional): ``1 - p`` when known more exactly than
            by the subtraction (``sigmoid(-x)``).

    Returns:
        tuple: ``FLpos`` and ``FLneg``, each the shape of ``prob``.
    """
    if not_prob is None:
        not_prob = 1 - prob
    fl_pos = -alpha * not_prob.pow(gamma) * log_p
    fl_neg = -(1 - alpha) * prob.pow(gamma) * log_not_p
    return fl_pos, fl_neg


def focal_terms_from_probs(prob: Tensor, alpha: float,
                           gamma: float) -> Tuple[Tensor, Tensor]:
    """:func:`focal_terms` of probabilities, the logs of the probabilities
    clamped at ``PROB_EPS``."""
    return focal_terms(prob,
                       prob.clamp(min=PROB_EPS).log(),
                       (1 - prob).clamp(min=PROB_EPS).log(), alpha, gamma)


def focal_terms_from_logits(logits: Tensor, alpha: float,
                            gamma: float) -> Tuple[Tensor, Tensor]:
    """:func:`focal_terms` of logits ``x``: ``p = sigmoid(x)``, ``1 - p =
    sigmoid(-x)`` and the logs ``logsigmoid(+-x)``, exact where the sigmoid
    saturates."""
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    return focal_terms(log_p.exp(), log_p, log_not_p, alpha, gamma,
                       not_prob=log_not_p.exp())


def one_hot_class_cost(neg_sum: Tensor, fl_pos: Tensor,
                       fl_neg: Tensor) -> Tensor:
    """The focal loss of a point's scores against the one-hot target of
    class ``c``, summed over the classes, without a (.., C) one-hot tensor:
    ``NEG - FLneg(p_c) + FLpos(p_c)`` with ``NEG = sum_c FLneg(p_c)``
    (docs/algorithms.md section 1, step 2).

    Args:
        neg_sum (Tensor): ``NEG`` of each point, broadcastable against the
            terms.
        fl_pos (Tensor): ``FLpos(p_c)`` of the target class.
        fl_neg (Tensor): ``FLneg(p_c)`` of the target class.

    Returns:
        Tensor: the broadcast shape.
    """
    return neg_sum - fl_neg + fl_pos


def prediction_quality(scores: Tensor,
                       bboxes: Tensor,
                       gt_boxes: Tensor,
                       gt_labels: Tensor,
                       alpha: float,
                       aligned: bool = False) -> Tensor:
    """DeFCN's quality ``p[a, c_g] ** (1 - alpha) * IoU(box[a], g) ** alpha``
    (docs/algorithms.md section 2, step 1).

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


def topk_first(values: Tensor, k: int, largest: bool = True) -> Tensor:
    """The indices of the ``k`` largest (or smallest) values of each row,
    ties going to the first index (``torch.topk`` leaves the choice among
    equal values unspecified, and it does vary with the size).

    Args:
        values (Tensor): (R, N), finite.
        k (int): 1 <= k <= N.
        largest (bool): largest (True) or smallest values.

    Returns:
        Tensor: (R, k) indices, in ascending index order in each row.
    """
    kth = values.topk(k, dim=1, largest=largest).values[:, -1:]
    better = values > kth if largest else values < kth
    tied = values == kth
    # fewer than k values beat the k-th one; the rest are the first ties
    need = k - better.sum(dim=1, keepdim=True)
    take = better | (tied & (tied.cumsum(dim=1) <= need))
    # exactly k taken per row: their indices, without a host sync (nonzero
    # would wait for the device), as the k largest of N - index over them
    num = values.size(1)
    key = take * torch.arange(num, 0, -1, device=values.device)
    return key.topk(k, dim=1).indices.sort(dim=1).values


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
    return inside_sides(priors[None, :, 0], priors[None, :, 1], x1, y1, x2,
                        y2, margin)


def inside_sides(xs: Tensor, ys: Tensor, x1: Tensor, y1: Tensor, x2: Tensor,
                 y2: Tensor, margin: float) -> Tensor:
    """Whether all four distances from points ``(xs, ys)`` to box sides
    exceed ``margin``, broadcast: the one strict inside test of the dense
    masks and the sparse pairs, so that both decide every point with the
    same float operations."""
    return ((xs - x1 > margin) & (ys - y1 > margin) & (x2 - xs > margin)
            & (y2 - ys > margin))


def check_level_priors(name: str,
                       num_level_priors: Optional[Sequence[int]],
                       num_levels: Optional[int] = None,
                       num_priors: Optional[int] = None) -> None:
    """Refuse a missing or inconsistent ``num_level_priors`` (points per
    FPN level) clearly.

    Args:
        name (str): the assigner's class name, for the message.
        num_level_priors (sequence[int], optional): as the head passes it.
        num_levels (int, optional): the number of levels it must have (the
            scale-range assigners: one range per level).
        num_priors (int, optional): the number of priors it must sum to.
    """
    levels = '' if num_levels is None else f' with {num_levels} levels'
    if num_level_priors is None or (num_levels is not None and
                                    len(num_level_priors) != num_levels):
        raise ValueError(f'{name} needs num_level_priors{levels}')
    if num_priors is not None and sum(num_level_priors) != num_priors:
        raise ValueError(
            f'num_level_priors sums to {sum(num_level_priors)}, '
            f'but there are {num_priors} priors')


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
