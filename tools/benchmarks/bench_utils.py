"""Shared pieces of the benchmark scripts in ``tools/benchmarks/``.

* realistic assigner inputs: the FPN points of a padded input, crowds of
  tall, overlapping person boxes, predicted boxes that are jittered GTs seen
  from each point, random class probabilities;
* side-by-side timing: every competitor runs once per round, the order
  rotates between rounds, the median over rounds is reported (the 2-core
  machine is shared, so only interleaved medians and ratios are meaningful);
* peak memory of one call: ``torch.cuda.max_memory_allocated`` on CUDA; on
  the CPU the peak resident set size of a forked child (see
  :func:`peak_memory_mb`);
* markdown tables.
"""
import contextlib
import ctypes
import math
import os
import pickle
import select
import signal
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

STRIDES = (8, 16, 32, 64, 128)
# (height, width) of the network input: CrowdHuman (shorter side 800, longer
# side <= 1400) and COCO (800 x 1333).
CROWDHUMAN_HW = (800, 1400)
COCO_HW = (800, 1333)
PAD_DIVISOR = 32
# Person boxes: width = ASPECT * height (CrowdHuman full bodies are ~0.41).
PERSON_ASPECT = 0.41
MIN_PERSON_HEIGHT = 48.0
# glibc mallopt parameters (malloc.h): a fixed mmap threshold makes every
# large block an mmap that is unmapped when freed, so the resident set size
# follows the live allocations.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
SMALL_BLOCK = 4096
MEMORY_TIMEOUT_S = 600


@contextlib.contextmanager
def sparse_min_pairs(module, value: Optional[int]):
    """Set ``module.SPARSE_MIN_PAIRS`` and ``SPARSE_MIN_PAIRS_CUDA`` (the
    sizes up to which an assigner takes its dense path on a CPU and on a
    CUDA device) to ``value`` inside the block (``None``: leave them), and
    restore both on exit."""
    names = ('SPARSE_MIN_PAIRS', 'SPARSE_MIN_PAIRS_CUDA')
    saved = [getattr(module, name) for name in names]
    if value is not None:
        for name in names:
            setattr(module, name, value)
    try:
        yield
    finally:
        for name, old in zip(names, saved):
            setattr(module, name, old)


def quiet_warnings() -> None:
    """Silence the deprecation chatter of torch / mmdet so the tables stay
    readable."""
    import warnings
    warnings.filterwarnings('ignore', category=FutureWarning)
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    warnings.filterwarnings('ignore', message='.*meshgrid.*')


def devices(requested: Optional[Sequence[str]] = None) -> List[str]:
    """The devices to benchmark: ``requested``, or the CPU plus CUDA when
    available."""
    if requested:
        return list(requested)
    return ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def featmap_sizes(img_hw: Tuple[int, int],
                  strides: Sequence[int] = STRIDES) -> List[Tuple[int, int]]:
    """Feature map sizes of a ResNet-FPN P3-P7 on a padded input.

    The input is padded to a multiple of 32; P3-P5 are the padded size over
    the stride; P6 and P7 come from 3x3 stride-2 convs (padding 1), i.e.
    ``ceil(previous / 2)``.
    """
    h = math.ceil(img_hw[0] / PAD_DIVISOR) * PAD_DIVISOR
    w = math.ceil(img_hw[1] / PAD_DIVISOR) * PAD_DIVISOR
    sizes = []
    for i, s in enumerate(strides):
        if s <= PAD_DIVISOR or i == 0:
            sizes.append((h // s, w // s))
        else:
            ph, pw = sizes[-1]
            sizes.append(((ph + 1) // 2, (pw + 1) // 2))
    return sizes


def make_priors(img_hw: Tuple[int, int],
                device: str = 'cpu') -> Tuple[Tensor, List[int]]:
    """(A, 4) points ``(x, y, stride_w, stride_h)`` of mmdet's
    ``MlvlPointGenerator(strides, offset=0.5)`` and the points per level."""
    from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
    gen = MlvlPointGenerator(STRIDES, offset=0.5)
    mlvl = gen.grid_priors(
        featmap_sizes(img_hw), device=device, with_stride=True)
    return torch.cat(mlvl), [len(p) for p in mlvl]


def square_anchors(priors: Tensor, octave_scale: float = 8.0) -> Tensor:
    """(A, 4) xyxy square anchors of side ``octave_scale * stride`` centred
    at the points (ATSS / RetinaNet with one anchor per location)."""
    half = priors[:, 2:3] * octave_scale / 2
    return torch.cat([priors[:, :2] - half, priors[:, :2] + half], dim=1)


def make_crowd(num_boxes: int,
               img_hw: Tuple[int, int],
               generator: torch.Generator,
               num_groups: Optional[int] = None) -> Tensor:
    """(N, 4) xyxy person boxes: tall, grouped in crowds that overlap.

    Heights are log-uniform between 48 px and 70% of the image height;
    people stand around a few group centres (spread ~ their own width), so
    neighbours overlap heavily, as in CrowdHuman.
    """
    h_img, w_img = img_hw
    if num_groups is None:
        num_groups = max(1, int(round(math.sqrt(num_boxes) / 2)))
    u = torch.rand(num_boxes, generator=generator)
    max_h = 0.7 * h_img
    heights = MIN_PERSON_HEIGHT * (max_h / MIN_PERSON_HEIGHT)**u
    widths = heights * PERSON_ASPECT * (
        0.8 + 0.4 * torch.rand(num_boxes, generator=generator))
    group_x = torch.rand(num_groups, generator=generator) * w_img
    group_y = (0.3 + 0.5 * torch.rand(num_groups, generator=generator)) * h_img
    group = torch.randint(num_groups, (num_boxes, ), generator=generator)
    cx = group_x[group] + torch.randn(num_boxes, generator=generator) * (
        1.5 * widths + 0.05 * w_img)
    cy = group_y[group] + torch.randn(num_boxes, generator=generator) * (
        0.15 * heights)
    cx = torch.minimum(torch.maximum(cx, widths / 2), w_img - widths / 2)
    cy = torch.minimum(torch.maximum(cy, heights / 2), h_img - heights / 2)
    return torch.stack(
        [cx - widths / 2, cy - heights / 2, cx + widths / 2, cy + heights / 2],
        dim=1)


def make_predictions(priors: Tensor,
                     gt_boxes: Tensor,
                     generator: torch.Generator,
                     jitter: float = 0.15) -> Tensor:
    """(A, 4) predicted xyxy boxes, decoded from non-negative distances.

    A point inside some GT predicts the smallest GT that contains it, each
    side moved by ``jitter`` times the box size (Gaussian); other points
    predict a jittered square of 4 strides around themselves. Distances are
    clamped at 0, as ``ReLU(pred) * stride`` heads give.
    """
    xs, ys = priors[:, 0], priors[:, 1]
    num_points = len(priors)
    stride = priors[:, 2]
    target = torch.stack(
        [xs - 2 * stride, ys - 2 * stride, xs + 2 * stride, ys + 2 * stride],
        dim=1)
    if len(gt_boxes):
        areas = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (
            gt_boxes[:, 3] - gt_boxes[:, 1])
        best_area = torch.full((num_points, ), float('inf'))
        best = torch.zeros(num_points, dtype=torch.long)
        # in chunks of GTs: a (G, A) mask of 1000 x 23k is fine, but stay
        # small for the memory benchmark's parent process
        for start in range(0, len(gt_boxes), 64):
            gts = gt_boxes[start:start + 64]
            inside = ((xs > gts[:, 0:1]) & (xs < gts[:, 2:3]) &
                      (ys > gts[:, 1:2]) & (ys < gts[:, 3:4]))
            area = torch.where(inside, areas[start:start + 64, None],
                               torch.full_like(inside, float('inf'),
                                               dtype=torch.float))
            chunk_area, chunk_idx = area.min(dim=0)
            better = chunk_area < best_area
            best_area = torch.where(better, chunk_area, best_area)
            best = torch.where(better, chunk_idx + start, best)
        has_gt = torch.isfinite(best_area)
        target = torch.where(has_gt[:, None], gt_boxes[best], target)
    size = (target[:, 2:] - target[:, :2]).repeat(1, 2)
    noisy = target + jitter * size * torch.randn(
        num_points, 4, generator=generator)
    dist = torch.stack(
        [xs - noisy[:, 0], ys - noisy[:, 1], noisy[:, 2] - xs,
         noisy[:, 3] - ys],
        dim=1).clamp(min=0)
    return torch.stack(
        [xs - dist[:, 0], ys - dist[:, 1], xs + dist[:, 2], ys + dist[:, 3]],
        dim=1)


def make_scores(num_points: int, num_classes: int,
                generator: torch.Generator) -> Tensor:
    """(A, C) probabilities uniform in (0.001, 0.999)."""
    return 0.001 + 0.998 * torch.rand(
        num_points, num_classes, generator=generator)


def synchronize(device: str) -> None:
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def time_side_by_side(fns: Dict[str, Callable[[], object]],
                      repeats: int,
                      warmup: int = 1,
                      device: str = 'cpu') -> Dict[str, float]:
    """Median seconds per call of each function, measured in rounds.

    Every round calls every function once; the order rotates from round to
    round so that none always runs first (caches, frequency, the other
    users of the machine).
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    synchronize(device)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            t0 = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _status_kb(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def peak_memory_mb(fn: Callable[[], object],
                   device: str = 'cpu',
                   timeout_s: float = MEMORY_TIMEOUT_S) -> float:
    """Peak memory (MiB) that one call of ``fn`` adds.

    CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before
    the call. CPU: ``fn`` runs in a forked child that fixes glibc's mmap
    threshold to 4 KiB (large blocks are mapped and unmapped, so the RSS
    follows the live tensors), calls ``fn`` once to page in code and lazy
    state, returns free heap pages to the system (``malloc_trim``; free
    memory inherited from the parent would otherwise be reused unseen),
    then reports the peak RSS of a second call (``VmHWM``, reset
    through ``/proc/self/clear_refs``) minus its RSS before that call. The
    child runs on one torch thread (an OpenMP pool does not survive a fork).
    Resolution: a few hundred KiB (the kernel batches RSS counter updates).
    """
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        code = 0
        try:
            # an OpenMP pool inherited from the parent hangs in a fork: stay
            # on one thread (torch then never enters an OpenMP region)
            torch.set_num_threads(1)
            libc = ctypes.CDLL('libc.so.6')
            libc.mallopt(M_MMAP_THRESHOLD, SMALL_BLOCK)
            libc.mallopt(M_TRIM_THRESHOLD, SMALL_BLOCK)
            fn()  # first call: pages in code and lazily built state
            # free heap memory inherited from the parent (or left by the
            # first call) is resident: give it back, so that reusing it
            # shows in the RSS again
            libc.malloc_trim(0)
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset VmHWM to the current RSS
            base = _status_kb('VmRSS')
            fn()
            peak = _status_kb('VmHWM')
            payload = pickle.dumps((peak - base) / 1024)
        except BaseException as e:  # report it to the parent
            payload = pickle.dumps(e)
            code = 1
        os.write(write_fd, payload)
        os.close(write_fd)
        os._exit(code)
    os.close(write_fd)
    ready, _, _ = select.select([read_fd], [], [], timeout_s)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)
        raise TimeoutError('memory measurement child did not answer')
    chunks = []
    while True:
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    result = pickle.loads(b''.join(chunks))
    if isinstance(result, BaseException):
        raise result
    return result


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; floats get 3 significant digits."""

    def fmt(v):
        if isinstance(v, float):
            if v == 0 or not math.isfinite(v):
                return str(v)
            if abs(v) >= 100:
                return f'{v:.0f}'
            return f'{v:.3g}'
        return str(v)

    lines = ['| ' + ' | '.join(headers) + ' |',
             '|' + '|'.join('---' for _ in headers) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(fmt(v) for v in row) + ' |')
    return '\n'.join(lines)


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Largest local exponent ``log(v2/v1) / log(s2/s1)`` between
    consecutive points: 1 means linear growth, 2 quadratic."""
    exps = [
        math.log(v2 / v1) / math.log(s2 / s1)
        for (s1, v1), (s2, v2) in zip(zip(sizes, values),
                                      zip(sizes[1:], values[1:]))
        if v1 > 0 and v2 > 0 and s2 != s1
    ]
    return max(exps) if exps else float('nan')


def loglog_slope(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``log(value)`` against ``log(size)``: the
    growth exponent over the whole sweep (1 = linear)."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx)**2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def machine_line() -> str:
    """One line saying where the numbers come from."""
    import platform
    cuda = (torch.cuda.get_device_name(0)
            if torch.cuda.is_available() else 'no CUDA device')
    return (f'torch {torch.__version__}, {platform.processor() or "cpu"}, '
            f'{os.cpu_count()} CPU cores visible, '
            f'{torch.get_num_threads()} torch thread(s), {cuda}')
