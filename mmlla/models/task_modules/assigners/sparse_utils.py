"""Sparse (row, point) pairs and one-to-one matchings for crowds.

In a crowd nearly every point lies inside *some* box, but each box holds
few of them: the pairs ``(competitor r, point a)`` with ``a`` inside ``r``'s
spatial prior are far fewer than ``R x A``. This module finds them from the
points' grid indices (no ``R x A`` scan) and solves the one-to-one matching
on them.

* :func:`grid_levels` recognises the FPN layout of the points (runs of
  equal stride, row-major grids) from the points themselves;
* :func:`prior_pairs` lists the in-prior pairs of each row from the grid
  cells its prior covers, then tests each candidate with the float
  operations of the dense mask (:func:`utils.inside_prior`), so the
  pairs are exactly ``inside_prior(...).nonzero()``; points that are no grid
  fall back to that dense mask;
* :func:`sparse_matching` solves the matching that maximises the total gain
  over the outside value on those pairs, each row keeping only its best
  ``R`` points (see its docstring for why the optimum is unchanged);
* :func:`fill_unmatched` gives the rows left without an in-prior point their
  point by a fixed rule.

mmdet and mmengine have no sparse assignment (their assigners build the
dense cost matrix), and scipy's sparse solver needs the graph built by hand:
hence this module.
"""
from typing import Callable, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from torch import Tensor

from .utils import inside_prior, inside_sides, prior_region, topk_first

# Up to this many (row, point) pairs R x A the dense paths of the matching
# assigners (prior mask, scipy's dense solver) are the cheaper ones
# (measured on a 2-core CPU: even at about 25 GTs x 22400 points); above
# it the sparse ones are used. (LLA has its own threshold,
# ``loss_aware_assigner.SPARSE_MIN_PAIRS``: its dense cost is dearer.)
SPARSE_MIN_PAIRS = 2**19
# The same on a CUDA device, where the dense mask is one cheap kernel and
# the sparse path's listing (many small kernels, host syncs) costs a fixed
# 10-15 ms: measured on an H100 with the whole-box prior at 800 x 1333, the
# dense path is faster up to about 70 GTs (1.6M pairs), the sparse one from
# 100 GTs (tools/benchmarks/bench_poto.py, docs/benchmarks.md).
SPARSE_MIN_PAIRS_CUDA = 2**21
# A point may sit this many cells away from its ideal grid position (the
# candidate ranges are widened by one cell on each side, which covers it).
GRID_TOLERANCE = 0.25
# More runs of equal stride than this is no FPN (e.g. several anchors per
# location): the dense mask is used instead.
MAX_GRID_LEVELS = 16


class GridLevel(NamedTuple):
    """One level of row-major grid points: point ``start + i * width + j``
    sits at ``(x0 + j * step_x, y0 + i * step_y)`` (within
    ``GRID_TOLERANCE`` cells); ``stride`` is its ``priors[:, 2]``."""
    start: int
    width: int
    height: int
    x0: float
    y0: float
    step_x: float
    step_y: float
    stride: float


def sparse_pays(num_rows: int, num_points: int,
                device: torch.device) -> bool:
    """Whether an R x A problem on ``device`` is large enough for the
    sparse paths (``SPARSE_MIN_PAIRS``, or ``SPARSE_MIN_PAIRS_CUDA`` on a
    CUDA device)."""
    limit = SPARSE_MIN_PAIRS_CUDA if torch.device(device).type == 'cuda' \
        else SPARSE_MIN_PAIRS
    return num_rows * num_points > limit


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
        center_radius (float): as :func:`utils.inside_prior`.
        margin (float): as :func:`utils.inside_prior`, >= 0.

    Returns:
        tuple: ``rows`` (P,) and ``points`` (P,) long, sorted by row, then
        point.
    """
    levels = None
    if priors.size(1) >= 4 \
            and sparse_pays(len(gt_boxes), len(priors), priors.device) \
            and bool(torch.isfinite(gt_boxes).all()):
        levels = grid_levels(priors[:, :2], priors[:, 2:4])
    if levels is None:
        return inside_prior(priors, gt_boxes, center_radius,
                            margin).nonzero(as_tuple=True)
    return grid_pairs(
        priors[:, :2], levels,
        lambda lvl: prior_region(gt_boxes, lvl.stride, center_radius),
        margin)


def grid_levels(xy: Tensor, key: Tensor) -> Optional[List[GridLevel]]:
    """The grid layout of points, or None if they do not form one.

    Args:
        xy (Tensor): (A, 2) points.
        key (Tensor): (A, K) a per-point level key (e.g. the strides
            ``priors[:, 2:4]``): levels are the runs of equal keys.

    Returns:
        list[GridLevel] | None: the levels in point order, or None when some
        run is not a row-major grid with positive steps (then callers use
        the dense mask).
    """
    num = len(xy)
    if num == 0 or len(key) != num:
        return None
    change = (key[1:] != key[:-1]).any(dim=1).nonzero(as_tuple=True)[0] + 1
    if len(change) + 1 > MAX_GRID_LEVELS:
        return None
    starts = [0] + change.tolist()
    ends = starts[1:] + [num]
    pts = xy.double()
    levels = []
    for start, end in zip(starts, ends):
        level = pts[start:end]
        n = end - start
        x0, y0 = level[0].tolist()
        off_row = (level[:, 1] != y0).nonzero(as_tuple=True)[0]
        width = int(off_row[0]) if len(off_row) else n
        if n % width:
            return None
        height = n // width
        step_x = float(level[1, 0] - x0) if width > 1 else 1.0
        step_y = float(level[width, 1] - y0) if height > 1 else 1.0
        if not (step_x > 0 and step_y > 0 and np.isfinite(step_x)
                and np.isfinite(step_y)):
            return None
        idx = torch.arange(n, device=xy.device)
        err_x = (level[:, 0] - (x0 + (idx % width) * step_x)).abs() / step_x
        err_y = (level[:, 1] - (y0 + (idx // width) * step_y)).abs() / step_y
        if float(torch.maximum(err_x, err_y).max()) > GRID_TOLERANCE:
            return None
        levels.append(
            GridLevel(start, width, height, x0, y0, step_x, step_y,
                      float(key[start, 0])))
    return levels


def _cell_range(lo: Tensor, hi: Tensor, origin: float, step: float,
                size: int) -> Tuple[Tensor, Tensor]:
    """Grid indices ``[first, last]`` that may hold a point strictly
    between ``lo`` and ``hi`` (widened by one cell on each side)."""
    first = torch.floor((lo.double() - origin) / step) - 1
    last = torch.ceil((hi.double() - origin) / step) + 1
    return (first.clamp(0, size).long(), last.clamp(-1, size - 1).long())


def grid_pairs(xy: Tensor, levels: List[GridLevel],
               region: Callable[[GridLevel], Tuple[Tensor, ...]],
               margin: float) -> Tuple[Tensor, Tensor]:
    """The (row, point) pairs whose point lies strictly inside the row's
    region, by grid indices.

    Args:
        xy (Tensor): (A, 2) points, laid out as ``levels``.
        levels (list[GridLevel]): from :func:`grid_levels`.
        region (callable): level -> ``(x1, y1, x2, y2)``, each (R, 1), the
            rows' regions for the points of that level; must be finite.
        margin (float): >= 0; the four distances must exceed it.

    Returns:
        tuple: ``rows`` (P,) and ``points`` (P,) long, sorted by row, then
        point: exactly the nonzeros of the dense (R, A) test
        ``xs - x1 > margin & ys - y1 > margin & x2 - xs > margin &
        y2 - ys > margin``.
    """
    assert margin >= 0, 'the widened cell ranges assume margin >= 0'
    device = xy.device
    sides, firsts_c, firsts_r, ncols, nrows = [], [], [], [], []
    for lvl in levels:
        x1, y1, x2, y2 = region(lvl)
        c0, c1 = _cell_range(x1[:, 0], x2[:, 0], lvl.x0, lvl.step_x,
                             lvl.width)
        r0, r1 = _cell_range(y1[:, 0], y2[:, 0], lvl.y0, lvl.step_y,
                             lvl.height)
        nc = (c1 - c0 + 1).clamp(min=0)
        nr = (r1 - r0 + 1).clamp(min=0) * (nc > 0)
        sides.append(torch.cat([x1, y1, x2, y2], dim=1))
        firsts_c.append(c0)
        firsts_r.append(r0)
        ncols.append(nc)
        nrows.append(nr)
    num_levels = len(levels)
    # (R, L) -> flattened row-major: segments ordered by row, then level,
    # and inside a segment row-major cells: points ascend within a row
    nrows = torch.stack(nrows, dim=1).flatten()
    ncols = torch.stack(ncols, dim=1).flatten()
    first_c = torch.stack(firsts_c, dim=1).flatten()
    first_r = torch.stack(firsts_r, dim=1).flatten()
    sides = torch.stack(sides, dim=1).flatten(0, 1)  # (R * L, 4)
    level_start = torch.tensor([lvl.start for lvl in levels], device=device)
    level_width = torch.tensor([lvl.width for lvl in levels], device=device)
    # two expansions without integer division: (row, level) segments into
    # their grid rows, grid rows into their cells
    seg = _expand(nrows)
    grid_row = first_r[seg] + _offsets(seg, nrows)
    lvl = seg % num_levels
    row_base = level_start[lvl] + grid_row * level_width[lvl] + first_c[seg]
    row_len = ncols[seg]
    cell_row = _expand(row_len)
    if cell_row.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    points = row_base[cell_row] + _offsets(cell_row, row_len)
    seg = seg[cell_row]
    x1, y1, x2, y2 = sides[seg].unbind(dim=1)
    xs, ys = xy[points, 0], xy[points, 1]
    # the dense mask's comparisons, element by element
    inside = inside_sides(xs, ys, x1, y1, x2, y2, margin)
    keep = inside.nonzero(as_tuple=True)[0]
    return seg[keep] // num_levels, points[keep]


def _expand(lengths: Tensor) -> Tensor:
    """Segment index of every element: ``i`` repeated ``lengths[i]``."""
    return torch.repeat_interleave(
        torch.arange(len(lengths), device=lengths.device), lengths)


def _offsets(seg: Tensor, lengths: Tensor) -> Tensor:
    """Position of every element inside its segment (from
    :func:`_expand`)."""
    starts = torch.cumsum(lengths, 0) - lengths
    return torch.arange(len(seg), device=seg.device) - starts[seg]


def row_starts(rows: Tensor, num_rows: int) -> Tuple[Tensor, Tensor]:
    """(num_rows,) number of pairs of each row and the position of its
    first pair, for pairs sorted by row."""
    counts = torch.bincount(rows, minlength=num_rows)
    return counts, torch.cumsum(counts, 0) - counts


def best_per_row(rows: Tensor, values: Tensor, num_rows: int, k: int,
                 largest: bool) -> Optional[Tensor]:
    """The pairs that are among their row's ``k`` best (largest or
    smallest values, ties to the first pair, i.e. the lower point).

    Args:
        rows (Tensor): (P,) rows in ``[0, num_rows)``, sorted.
        values (Tensor): (P,) finite values.
        num_rows (int): number of rows.
        k (int): pairs kept per row.
        largest (bool): keep the largest (True) or smallest values.

    Returns:
        Tensor | None: (P',) ascending positions of the kept pairs, or None
        when every row has at most ``k`` pairs (all are kept).
    """
    counts, starts = row_starts(rows, num_rows)
    over = counts > k
    if not bool(over.any()):
        return None
    # the rows with more than k pairs, padded into matrices in pair order
    # (so that topk_first's "first index" is the lower point; padding ranks
    # last), one matrix per power-of-two bucket of counts so that the
    # padding stays below the pairs
    pad = -float('inf') if largest else float('inf')
    bucket = torch.ceil(torch.log2(counts.clamp(min=1).double())).long()
    bucket = torch.where(over, bucket, torch.full_like(bucket, -1))
    kept = [(~over[rows]).nonzero(as_tuple=True)[0]]
    for b in torch.unique(bucket[over]).tolist():
        sel = (bucket == b).nonzero(as_tuple=True)[0]
        # the pairs of these rows: contiguous runs (pairs sorted by row)
        seg = _expand(counts[sel])
        col = _offsets(seg, counts[sel])
        matrix = values.new_full((len(sel), int(counts[sel].max())), pad)
        matrix[seg, col] = values[starts[sel][seg] + col]
        best = topk_first(matrix, k, largest=largest)  # (rows, k) columns
        kept.append((starts[sel][:, None] + best).flatten())
    return torch.cat(kept).sort().values


def sparse_matching(rows: Tensor, points: Tensor, values: Tensor,
                    num_rows: int, outside: float,
                    maximize: bool) -> Tuple[Tensor, Tensor]:
    """Optimal one-to-one matching of rows to points when every pair not
    listed is worth ``outside`` (which no listed pair is worse than).

    The dense problem (a (R, A) matrix of ``values`` at the listed pairs
    and ``outside`` elsewhere, every row matched when ``R <= A``, every
    point when ``R > A``) has the total ``sum over the matched listed pairs
    of gain + min(R, A) * outside`` with ``gain = value - outside``
    (maximising; ``outside - value`` when minimising), because a row
    matched outside its pairs adds ``outside`` whatever point it takes, and
    any partial matching of listed pairs extends to a full one. So its
    optimum is the maximum-gain partial matching of the listed pairs, and
    two reductions keep that optimum:

    * each row keeps its ``R'`` best pairs (``R'`` the number of rows with
      pairs; ties to the lower point): in an optimal matching, a row matched
      to a pair outside its kept ones has, among its ``R'`` kept points, one
      that no other row holds (there are only ``R' - 1`` of them) and that
      is worth at least as much; moving the row there loses nothing and
      moves no other row;
    * each row gets a private dummy point worth gain 0 ("unmatched"), so a
      full matching of the rows always exists.

    The result is solved with scipy's LAPJVsp
    (``min_weight_full_bipartite_matching``) on gains + 1 (its weights must
    be non-zero). The optimum is the dense optimum; where several matchings
    reach it (exactly equal values), the pairs are the solver's choice.

    Args:
        rows (Tensor): (P,) row of each pair, sorted; pairs of one row in
            ascending point order.
        points (Tensor): (P,) point of each pair.
        values (Tensor): (P,) value of each pair.
        num_rows (int): R.
        outside (float): the value of every pair not listed.
        maximize (bool): maximise (POTO's quality) or minimise (a cost).

    Returns:
        tuple: ``rows`` and ``points`` (long, on the inputs' device) of the
        matched listed pairs; rows matched outside their pairs are left out
        (see :func:`fill_unmatched`).
    """
    device = rows.device
    empty = torch.zeros(0, dtype=torch.long, device=device)
    gain = (values.double() - outside) if maximize else \
        (outside - values.double())
    useful = gain > 0  # a pair no better than outside: as good as unmatched
    if not bool(useful.all()):
        rows, points, values, gain = (rows[useful], points[useful],
                                      values[useful], gain[useful])
    if rows.numel() == 0:
        return empty, empty
    active, row_pos = torch.unique_consecutive(rows, return_inverse=True)
    num_active = len(active)
    keep = best_per_row(row_pos, values, num_active, num_active, maximize)
    if keep is not None:
        row_pos, points, gain = row_pos[keep], points[keep], gain[keep]
    cols, col_pos = torch.unique(points, return_inverse=True)
    num_cols = len(cols)
    dummy = np.arange(num_active)
    graph = coo_matrix(
        (np.concatenate([gain.cpu().numpy() + 1, np.ones(num_active)]),
         (np.concatenate([row_pos.cpu().numpy(), dummy]),
          np.concatenate([col_pos.cpu().numpy(), num_cols + dummy]))),
        shape=(num_active, num_cols + num_active)).tocsr()
    row_ind, col_ind = min_weight_full_bipartite_matching(graph, maximize=True)
    real = col_ind < num_cols
    row_ind = torch.as_tensor(row_ind[real], device=device, dtype=torch.long)
    col_ind = torch.as_tensor(col_ind[real], device=device, dtype=torch.long)
    return active[row_ind], cols[col_ind]


def dense_matching(matrix: Tensor, outside: float,
                   maximize: bool) -> Tuple[Tensor, Tensor]:
    """The reference of :func:`sparse_matching`: scipy's
    ``linear_sum_assignment`` on a dense (R, K) matrix whose non-listed
    entries are ``outside``; returns the matched (row, column) pairs that
    beat ``outside`` (the others count as unmatched)."""
    rows, cols = linear_sum_assignment(
        matrix.detach().cpu().double().numpy(), maximize=maximize)
    rows = torch.as_tensor(rows, device=matrix.device, dtype=torch.long)
    cols = torch.as_tensor(cols, device=matrix.device, dtype=torch.long)
    values = matrix[rows, cols].double()
    better = values > outside if maximize else values < outside
    return rows[better], cols[better]


def fill_unmatched(rows: Tensor, points: Tensor, num_rows: int,
                   num_points: int) -> Tuple[Tensor, Tensor]:
    """Give the rows without a point one by a fixed rule.

    In an optimal one-to-one matching, a row left without an in-prior
    point has none free (it would take it), so any free point is outside
    its prior and all free points are worth the same to it. Rule: the
    unmatched rows, in ascending order, take the free points in ascending
    order, until the points run out (``R > A``). The total is unchanged;
    the dense and sparse paths both apply it, so their results agree.

    Args:
        rows (Tensor): (M,) matched rows.
        points (Tensor): (M,) their points (distinct).
        num_rows (int): R.
        num_points (int): A.

    Returns:
        tuple: ``rows`` and ``points`` with the filled pairs appended.
    """
    device = rows.device
    taken = torch.zeros(num_points, dtype=torch.bool, device=device)
    taken[points] = True
    matched = torch.zeros(num_rows, dtype=torch.bool, device=device)
    matched[rows] = True
    free = (~taken).nonzero(as_tuple=True)[0]
    waiting = (~matched).nonzero(as_tuple=True)[0]
    num = min(len(free), len(waiting))
    return (torch.cat([rows, waiting[:num]]),
            torch.cat([points, free[:num]]))
