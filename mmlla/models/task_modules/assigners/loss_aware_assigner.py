"""LLA: loss-aware label assignment (Ge et al., 2021)."""
from typing import List, Optional, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import BaseBoxes, bbox_overlaps, get_box_tensor
from mmengine.structures import InstanceData
from torch import Tensor

from .sparse_utils import (GridLevel, best_per_row, grid_levels, grid_pairs,
                           row_starts)
from .utils import (INSIDE_MARGIN, check_prior_type, check_score_type,
                    focal_terms_from_logits, focal_terms_from_probs,
                    inside_sides, one_hot_class_cost, read_inputs,
                    topk_first)

# Cost added to the (GT, point) pairs whose point lies outside the GT box:
# such points are ranked after every inside point, never excluded.
OUTSIDE_COST = 1000.0
# Lower bound of the IoU inside -log(IoU): float32 machine epsilon.
IOU_EPS = torch.finfo(torch.float32).eps
# The cost is built for at most this many (competitor, point) pairs at a time
# (4 MB per float32 matrix: large chunks fall out of cache, small ones pay
# per-chunk overhead); only each competitor's top-k survives a chunk.
MAX_PAIRS_PER_CHUNK = 2**20
# Points per chunk of the (A, C) class-cost table.
POINTS_PER_CHUNK = 4096
# Above this many (row, point) pairs R x A the sparse path is used when the
# priors are FPN grids (it pays from about 5 GTs x 23k points: the dense
# cost is dearer than the matching assigners' dense mask, whose threshold
# is ``sparse_utils.SPARSE_MIN_PAIRS``; measured on a 2-core CPU).
SPARSE_MIN_PAIRS = 2**17
# The same on a CUDA device, where the dense path's chunked cost is a few
# large kernels and the sparse listing (many small kernels, host syncs)
# costs a fixed 12-15 ms: measured on an H100 at CrowdHuman scale (23463
# points), the dense path is faster up to about 500 GTs (12M pairs)
# (tools/benchmarks/bench_assigners.py, docs/benchmarks.md).
SPARSE_MIN_PAIRS_CUDA = 2**23
# In-box costs below OUTSIDE_COST - COST_SAFETY beat every outside cost
# (which is OUTSIDE_COST plus two losses >= 0, minus rounding far below 1).
COST_SAFETY = 1.0


@TASK_UTILS.register_module()
class LossAwareAssigner(BaseAssigner):
    """Loss-aware label assignment (`LLA
    <https://arxiv.org/abs/2101.04307>`_).

    For every (row ``r``, point ``a``) pair, where the ``R = G + I`` rows
    are the ``G`` ground truths followed by the ``I`` ignore regions (class
    0):

    ``cost[r, a] = Lcls[r, a] + reg_cost * Lreg[r, a] + 1000 * outside[r, a]``

    with ``Lcls`` the sigmoid focal loss of the point's class probabilities
    against the one-hot target of ``r``'s class (summed over classes),
    ``Lreg = -log(max(IoU(pred_box[a], box[r]), eps))`` and ``outside`` true
    unless all four distances from the point to the sides of ``box[r]``
    exceed 0.01 px. Each row ``r`` takes the set ``S_r`` of its ``topk``
    cheapest points over all ``A`` points (docs/algorithms.md section 1,
    steps 1-3; the step numbers in this file are that section's). With
    ``n[a] = #{r : a in S_r}`` the number of rows that took point ``a``
    (step 4):

    - ``n[a] == 0``: background;
    - ``n[a] == 1``: the one row ``r`` with ``a in S_r``;
    - ``n[a] >= 2``: ``argmin_r cost[r, a]`` over **all** ``R`` rows, i.e.
      the minimum of the whole cost column, which may be a row that did not
      take ``a`` (the reference implementation's rule), the lowest row index
      on an exact tie.

    A point that goes to an ignore region gets ``gt_inds == -1``.

    ``Lcls`` never materialises a (R, A, C) tensor: with
    ``NEG[a] = sum_c FLneg(p[a, c])`` the focal loss of the one-hot target of
    class ``c`` is ``NEG[a] - FLneg(p[a, c]) + FLpos(p[a, c])``, an (A, C)
    table from which each row gathers its class column. The (R, A) cost is
    built in chunks of rows; a chunk leaves only each row's top-k indices
    and updates the running (A,) column minimum and its row, so memory is
    O(A x C + chunk x A + R x topk).

    Priors: ``(A, 2)`` points, ``(A, 4)`` points with strides
    ``(x, y, stride_w, stride_h)`` (mmdet's ``MlvlPointGenerator`` with
    ``with_stride=True``), or ``(A, 4)`` anchors ``(x1, y1, x2, y2)`` (anchor
    heads), whose centres serve as the points. The config states which
    ``(A, 4)`` tensors are: ``prior_type='point'`` (the default: LLAHead,
    YOLOXHead, RTMDetHead) or ``'anchor'`` (LLARetinaHead, DDODHead).
    ``'auto'`` guesses from the values instead (anchors exactly when every
    row has ``x2 > x1`` and ``y2 > y1``, which points with strides fail as
    soon as one point lies at ``x >= stride_w`` or ``y >= stride_h``); it
    is wrong for a head whose every level is a single cell. ``BaseBoxes``
    priors are always anchors, ``(A, 2)`` priors always points.

    Sparse path (the default, for problems above ``SPARSE_MIN_PAIRS`` (on a
    CUDA device ``SPARSE_MIN_PAIRS_CUDA``)
    (R x A) whose priors are FPN grids of points or of one anchor per
    location): only the in-box pairs are costed, listed from the grid cells
    each box covers; a row with fewer than ``topk`` in-box points, and a
    contested point without an in-box row, get their whole cost row or
    column (see :meth:`sparse_candidates`): the same ``gt_inds`` as the
    dense path in time and memory proportional to the in-box pairs.

    Args:
        topk (int): points taken by each row (GT or ignore region).
            Defaults to 10.
        reg_cost (float): weight of the regression cost. Defaults to 1.5.
        alpha (float): focal loss alpha. Defaults to 0.25.
        gamma (float): focal loss gamma. Defaults to 2.0.
        prior_type (str): what ``(A, 4)`` tensor priors are: ``'point'``
            (points with strides; the default), ``'anchor'`` (xyxy
            anchors) or ``'auto'`` (guessed from the values).
        score_type (str): what ``pred_instances.scores`` are: ``'probs'``
            (the default: class probabilities in [0, 1], as LLAHead,
            LLARetinaHead and mmdet's YOLOXHead pass) or ``'logits'``
            (classification logits, as mmdet's RTMDetHead and DDODHead
            pass). With ``'logits'`` the focal terms use
            ``p = sigmoid(x)``, ``1 - p = sigmoid(-x)`` and the logs
            ``log p = logsigmoid(x)``, ``log(1 - p) = logsigmoid(-x)``:
            exact where the sigmoid saturates, where ``'probs'`` clamps the
            probabilities at 1e-12 inside the logs.
        sparse (bool): use the sparse path when it applies (default), or
            always the dense one (the reference, for tests and
            benchmarks).
    """

    def __init__(self,
                 topk: int = 10,
                 reg_cost: float = 1.5,
                 alpha: float = 0.25,
                 gamma: float = 2.0,
                 prior_type: str = 'point',
                 score_type: str = 'probs',
                 sparse: bool = True) -> None:
        if topk < 1:
            raise ValueError(f'topk must be >= 1, got {topk}')
        self.topk = topk
        self.reg_cost = reg_cost
        self.alpha = alpha
        self.gamma = gamma
        self.prior_type = check_prior_type(prior_type)
        self.score_type = check_score_type(score_type)
        self.sparse = sparse

    def prior_points(self, priors) -> Tensor:
        """The (A, 2) points that the in-box rule tests.

        Args:
            priors (Tensor | BaseBoxes): (A, 2) points, (A, 4) points with
                strides, or (A, 4) xyxy anchors.

        Returns:
            Tensor: (A, 2) float32 ``(x, y)``.
        """
        is_anchor = self.stated_anchor(priors)
        priors = get_box_tensor(priors).float()
        if priors.size(-1) == 2:
            if self.prior_type == 'anchor':
                raise ValueError('prior_type="anchor" needs (A, 4) priors')
            return priors
        centres = (priors[:, :2] + priors[:, 2:]) / 2
        if is_anchor is None:
            # 'auto': decided on the device (a 0-dim bool), no host sync
            return torch.where(looks_like_anchors(priors), centres,
                               priors[:, :2])
        return centres if is_anchor else priors[:, :2]

    def stated_anchor(self, priors) -> Optional[bool]:
        """Whether ``(A, 4)`` priors are anchors, as their type or
        ``prior_type`` states it; None when ``prior_type='auto'`` leaves it
        to the values (:func:`looks_like_anchors`)."""
        if isinstance(priors, BaseBoxes) or self.prior_type == 'anchor':
            return True
        if self.prior_type == 'point':
            return False
        return None

    def focal_terms(self, p: Tensor) -> Tuple[Tensor, Tensor]:
        """``FLpos(p)`` and ``FLneg(p)`` element-wise, in float32
        (docs/algorithms.md section 1, step 2).

        ``p`` holds scores of ``score_type``: probabilities, or logits
        (whose focal terms are taken through log-sigmoid, exactly).
        """
        if self.score_type == 'logits':
            return focal_terms_from_logits(p.float(), self.alpha, self.gamma)
        return focal_terms_from_probs(p.float(), self.alpha, self.gamma)

    def class_cost_table(self, scores: Tensor) -> Tensor:
        """Focal loss of every point against every one-hot target.

        Args:
            scores (Tensor): (A, C) scores of ``score_type``.

        Returns:
            Tensor: (A, C), entry ``[a, c]`` = sum over classes of the sigmoid
            focal loss of ``scores[a]`` against the one-hot target of ``c``.
        """
        # Filled by chunks of points: the element-wise temporaries (several
        # per formula) stay small; only the (A, C) table itself is full size.
        table = scores.new_empty(scores.shape, dtype=torch.float32)
        for start in range(0, len(scores), POINTS_PER_CHUNK):
            fl_pos, fl_neg = self.focal_terms(
                scores[start:start + POINTS_PER_CHUNK])
            table[start:start + POINTS_PER_CHUNK] = one_hot_class_cost(
                fl_neg.sum(dim=1, keepdim=True), fl_pos, fl_neg)
        return table

    def negative_sum(self, scores: Tensor) -> Tensor:
        """(A,) ``NEG[a] = sum_c FLneg(p[a, c])``, by chunks of points."""
        return torch.cat([
            self.focal_terms(scores[start:start + POINTS_PER_CHUNK])[1].sum(1)
            for start in range(0, len(scores), POINTS_PER_CHUNK)
        ])

    def class_costs(self, scores: Tensor, labels: Tensor,
                    cls_table: Optional[Tensor],
                    neg_sum: Optional[Tensor]) -> Tensor:
        """(g, A) ``Lcls`` of a chunk of competitors of classes ``labels``:
        looked up in the (A, C) table, or, when there are fewer competitors
        than classes and no table was built, from the identity directly."""
        if cls_table is not None:
            return cls_table[:, labels].t()
        fl_pos, fl_neg = self.focal_terms(scores[:, labels].t())
        return one_hot_class_cost(neg_sum[None], fl_pos, fl_neg)

    def class_tools(self, scores: Tensor,
                    num_rows: int) -> Tuple[Optional[Tensor],
                                            Optional[Tensor]]:
        """What ``Lcls`` is looked up in: fewer rows than classes
        (COCO-like): ``(None, NEG)`` and each row's class cost from the
        identity, no (A, C) table; otherwise (CrowdHuman: one class, many
        people) ``(table, None)``, computed once per class. Decided on
        shapes alone (no host sync), on all ``R`` rows, so that every path
        computes each cost with the same operations."""
        if num_rows < scores.size(1):
            return None, self.negative_sum(scores)
        return self.class_cost_table(scores), None

    def cost_block(self, xs: Tensor, ys: Tensor, bboxes: Tensor,
                   scores: Tensor, gts: Tensor, labels: Tensor,
                   cls_table: Optional[Tensor],
                   neg_sum: Optional[Tensor]) -> Tensor:
        """(g, n) cost of ``g`` rows at ``n`` points (step 2).

        Args:
            xs, ys (Tensor): (n,) the points.
            bboxes (Tensor): (n, 4) float32 predicted boxes.
            scores (Tensor): (n, C) scores of ``score_type``.
            gts (Tensor): (g, 4) float32 rows' boxes.
            labels (Tensor): (g,) long rows' classes.
            cls_table, neg_sum: from :meth:`class_tools`, restricted to the
                ``n`` points.
        """
        x1, y1, x2, y2 = (gts[:, i:i + 1] for i in range(4))
        inside = inside_sides(xs, ys, x1, y1, x2, y2, INSIDE_MARGIN)
        cost = bbox_overlaps(gts, bboxes)  # (g, n) IoU
        cost = cost.clamp_(min=IOU_EPS).log_().mul_(-self.reg_cost)
        cost += self.class_costs(scores, labels, cls_table, neg_sum)
        cost += (~inside).float().mul_(OUTSIDE_COST)
        return cost

    def candidates(self, points: Tensor, scores: Tensor, bboxes: Tensor,
                   gt_boxes: Tensor,
                   gt_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Each row's ``topk`` cheapest points (steps 1-3) and the cheapest
        row of every point (what step 4 needs for contested points), on the
        whole (R, A) cost (the dense path).

        Args:
            points (Tensor): (A, 2) points.
            scores (Tensor): (A, C) scores of ``score_type``.
            bboxes (Tensor): (A, 4) predicted xyxy boxes.
            gt_boxes (Tensor): (R, 4) rows' boxes (GTs, then ignore regions).
            gt_labels (Tensor): (R,) rows' classes.

        Returns:
            tuple: ``index`` (R, k) the point indices taken by each row, with
            ``k = min(topk, A)``, and ``column_row`` (A,) long,
            ``argmin_r cost[r, a]`` over all R rows (the first row on a tie).
        """
        num_rows, num_points = len(gt_boxes), len(points)
        k = min(self.topk, num_points)
        rows_per_chunk = max(1, MAX_PAIRS_PER_CHUNK // num_points)
        xs, ys = points[:, 0], points[:, 1]
        bboxes = bboxes.float()
        cls_table, neg_sum = self.class_tools(scores, num_rows)
        indices = []
        # running minimum of every cost column over the chunks seen so far,
        # and its row
        column_min = points.new_full((num_points, ), float('inf'))
        column_row = torch.zeros(num_points, dtype=torch.long,
                                 device=points.device)
        for start in range(0, num_rows, rows_per_chunk):
            cost = self.cost_block(
                xs, ys, bboxes, scores,
                gt_boxes[start:start + rows_per_chunk].float(),
                gt_labels[start:start + rows_per_chunk].long(), cls_table,
                neg_sum)
            # each row's k cheapest points, ties to the first index
            indices.append(topk_first(cost, k, largest=False))
            # min(dim=0) takes the first row of the chunk on a tie; strict <
            # keeps an earlier chunk's row on a tie across chunks
            chunk_min, chunk_row = cost.min(dim=0)
            better = chunk_min < column_min
            column_min = torch.where(better, chunk_min, column_min)
            column_row = torch.where(better, chunk_row + start, column_row)
        return torch.cat(indices), column_row

    def grid_key(self, priors) -> Optional[Tensor]:
        """(A, 2) per-point level key for :func:`grid_levels` (the strides
        of points, the sizes of anchors), or None for (A, 2) points, which
        carry no level."""
        is_anchor = self.stated_anchor(priors)
        priors = get_box_tensor(priors)
        if priors.size(-1) == 2:
            return None
        if is_anchor is None:
            is_anchor = bool(looks_like_anchors(priors))
        return priors[:, 2:] - priors[:, :2] if is_anchor else priors[:, 2:]

    def sparse_candidates(self, points: Tensor, scores: Tensor,
                          bboxes: Tensor, gt_boxes: Tensor,
                          gt_labels: Tensor,
                          levels: List[GridLevel]) -> Tuple[Tensor, Tensor]:
        """What :meth:`candidates` returns, from the in-box pairs only.

        The in-box (row, point) pairs come from the grid cells each box
        covers. Every in-box cost below ``OUTSIDE_COST - COST_SAFETY`` is
        cheaper than every outside cost (an outside cost is at least
        ``OUTSIDE_COST`` minus rounding: both losses are >= 0), so:

        * a row with at least ``k`` in-box points whose ``k`` cheapest
          in-box costs are all below that bound takes exactly them (ties to
          the lower point, as :func:`topk_first`); any other row (fewer than
          ``k`` in-box points: small boxes, boxes off the image) has its
          whole cost row computed and ranked as in the dense path;
        * the cheapest row of a point whose cheapest in-box cost is below
          the bound is its cheapest in-box row (the first on a tie); for
          the few contested points without one, the whole cost column over
          all ``R`` rows is computed.

        Costs are computed with the dense path's operations (the same
        values; with ``score_type='logits'`` and fewer rows than classes
        the log-sigmoid may differ in the last bit between vectorised and
        scalar code). Time and memory: the in-box pairs, plus ``A`` per
        fallback row and ``R`` per fallback column.

        Returns:
            tuple: ``index`` (R, k) and ``column_row`` (A,); ``column_row``
            is exact at every point taken by two rows or more (the only
            points where :meth:`assign` reads it), 0 elsewhere.
        """
        device = points.device
        num_rows, num_points = len(gt_boxes), len(points)
        k = min(self.topk, num_points)
        gts = gt_boxes.float()
        labels = gt_labels.long()
        bboxes = bboxes.float()
        cls_table, neg_sum = self.class_tools(scores, num_rows)
        xs, ys = points[:, 0], points[:, 1]
        rows, pts = grid_pairs(
            points, levels, lambda lvl: tuple(gts[:, i:i + 1]
                                              for i in range(4)),
            INSIDE_MARGIN)
        # step 2 at the in-box pairs (the outside term is 0 there)
        cost = bbox_overlaps(gts[rows], bboxes[pts], is_aligned=True)
        cost = cost.clamp_(min=IOU_EPS).log_().mul_(-self.reg_cost)
        if cls_table is not None:
            cost += cls_table[pts, labels[rows]]
        else:
            fl_pos, fl_neg = self.focal_terms(scores[pts, labels[rows]])
            cost += one_hot_class_cost(neg_sum[pts], fl_pos, fl_neg)
        bound = OUTSIDE_COST - COST_SAFETY

        # step 3: rows served by their in-box points
        counts, _ = row_starts(rows, num_rows)
        keep = best_per_row(rows, cost, num_rows, k, largest=False)
        if keep is None:
            keep = torch.arange(len(rows), device=device)
        kept_rows = rows[keep]
        worst = cost.new_full((num_rows, ), float('inf')).scatter_reduce(
            0, kept_rows, cost[keep], 'amax', include_self=False)
        served = (counts >= k) & (worst < bound)
        index = torch.zeros((num_rows, k), dtype=torch.long, device=device)
        take = served[kept_rows]
        index[served] = pts[keep[take]].view(-1, k)
        dense_rows = (~served).nonzero(as_tuple=True)[0]
        rows_per_chunk = max(1, MAX_PAIRS_PER_CHUNK // num_points)
        for start in range(0, len(dense_rows), rows_per_chunk):
            chunk = dense_rows[start:start + rows_per_chunk]
            block = self.cost_block(xs, ys, bboxes, scores, gts[chunk],
                                    labels[chunk], cls_table, neg_sum)
            index[chunk] = topk_first(block, k, largest=False)

        # step 4: the cheapest row of the contested points
        num_claims = torch.bincount(index.flatten(), minlength=num_points)
        col_min = cost.new_full((num_points, ), float('inf')).scatter_reduce(
            0, pts, cost, 'amin')
        is_min = cost == col_min[pts]
        column_row = torch.full((num_points, ), num_rows, device=device)
        column_row = column_row.scatter_reduce(0, pts[is_min], rows[is_min],
                                               'amin')
        open_cols = ((num_claims > 1) &
                     ~(col_min < bound)).nonzero(as_tuple=True)[0]
        cols_per_chunk = max(1, MAX_PAIRS_PER_CHUNK // num_rows)
        for start in range(0, len(open_cols), cols_per_chunk):
            cols = open_cols[start:start + cols_per_chunk]
            block = self.cost_block(
                xs[cols], ys[cols], bboxes[cols], scores[cols], gts, labels,
                None if cls_table is None else cls_table[cols],
                None if neg_sum is None else neg_sum[cols])
            column_row[cols] = block.min(dim=0).indices
        column_row = torch.where(num_claims > 1, column_row,
                                 torch.zeros_like(column_row))
        return index, column_row

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               num_level_priors: Optional[List[int]] = None,
               **kwargs) -> AssignResult:
        """Assign ground truths (and ignore regions) to points.

        Args:
            pred_instances (InstanceData): ``priors`` (A, 2) or (A, 4) (see
                the class docstring), ``scores`` (A, C) classification
                probabilities (or logits: see ``score_type``), ``bboxes``
                (A, 4) decoded xyxy predictions.
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): ``bboxes`` (I, 4)
                ignore regions.
            num_level_priors (list[int], optional): points per level, as
                FCOS-style heads pass it (the same signature as this
                package's other assigners); unused, since LLA ranks the
                points of all levels together. Where ATSSHead passes it
                positionally before the ground truths, the call is refused
                with a ``TypeError``.
            **kwargs: what heads pass besides; unused.

        Returns:
            AssignResult: ``gt_inds`` (A,) 0 background, k + 1 for GT k, -1
            for points given to an ignore region; ``labels`` (A,) the GT class
            of positives, -1 elsewhere; ``max_overlaps`` (A,) IoU of a
            positive's predicted box with its GT, 0 elsewhere.
        """
        inputs = read_inputs(
            'LossAwareAssigner',
            pred_instances,
            gt_instances,
            gt_instances_ignore,
            ignore_regions=True)
        points = self.prior_points(inputs.priors)
        if inputs.is_empty:
            return inputs.empty_result()
        scores, bboxes = inputs.scores, inputs.bboxes
        gt_boxes, gt_labels = inputs.gt_boxes, inputs.gt_labels
        num_gts, num_rows = inputs.num_gts, inputs.num_rows
        num_points = len(points)
        device = points.device

        levels = None
        if self.sparse and sparse_pays(num_rows * num_points, device) and \
                bool(torch.isfinite(gt_boxes).all()):
            key = self.grid_key(inputs.priors)
            if key is not None:
                levels = grid_levels(points, key)
        if levels is not None:
            index, column_row = self.sparse_candidates(
                points, scores, bboxes, gt_boxes, gt_labels, levels)
        else:
            index, column_row = self.candidates(points, scores, bboxes,
                                                gt_boxes, gt_labels)
        index = index.flatten()
        rows = torch.arange(num_rows, device=device).repeat_interleave(
            len(index) // num_rows)
        # step 4 without a host sync: how many rows took each point, and
        # the sum of their indices (for a point taken once: its one row)
        num_claims = torch.zeros_like(column_row).scatter_add_(
            0, index, torch.ones_like(rows))
        claimant = torch.zeros_like(column_row).scatter_add_(0, index, rows)
        # taken once: its claimant; taken several times: the cheapest of
        # all rows at that point (claimant or not)
        row = torch.where(num_claims > 1, column_row, claimant)
        claimed = num_claims > 0
        is_gt = claimed & (row < num_gts)
        gt_inds = torch.where(is_gt, row + 1,
                              torch.where(claimed, -1, 0))
        labels = torch.where(is_gt, gt_labels.long()[row], -1)
        # IoU of each positive's predicted box with its GT (the winning row
        # may not have taken the point: computed here, aligned, O(A))
        iou = bbox_overlaps(gt_boxes.float()[row], bboxes.float(),
                            is_aligned=True)
        max_overlaps = torch.where(is_gt, iou, 0.0)
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)


def sparse_pays(num_pairs: int, device: torch.device) -> bool:
    """Whether LLA's sparse path pays for ``num_pairs`` (row, point) pairs
    on ``device`` (``SPARSE_MIN_PAIRS``, or ``SPARSE_MIN_PAIRS_CUDA`` on a
    CUDA device)."""
    limit = SPARSE_MIN_PAIRS_CUDA if torch.device(device).type == 'cuda' \
        else SPARSE_MIN_PAIRS
    return num_pairs > limit


def looks_like_anchors(priors: Tensor) -> Tensor:
    """0-dim bool: every (A, 4) prior has ``x2 > x1`` and ``y2 > y1``
    (``prior_type='auto'``'s guess that the priors are anchors)."""
    return ((priors[:, 2] > priors[:, 0]) &
            (priors[:, 3] > priors[:, 1])).all()
