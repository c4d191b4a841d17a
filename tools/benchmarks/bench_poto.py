"""POTOAssigner (Hungarian) end to end against the literal dense POTO.

    python tools/benchmarks/bench_poto.py [--quick] [--gts 10 50 100 300 1000]
        [--radii 0 1.5] [--repeats 3] [--device cpu cuda] [--threads 1]

The points of an 800x1333 input (COCO, C=80), crowds of G person boxes,
predicted boxes jittered around them and random probabilities. Competitors,
side by side in one run:

* ``POTO``: ``mmlla``'s ``POTOAssigner`` (sparse: quality at the in-prior
  pairs listed from grid indices, each GT keeping its G best points,
  LAPJVsp);
* ``ref``: ``POTOAssigner(sparse=False)``, its dense-mask path (dense
  prior mask, quality of the in-prior columns plus G outside ones, scipy's
  ``linear_sum_assignment``); its ``gt_inds`` must equal POTO's;
* ``dense``: docs/algorithms.md section 2 taken literally: the quality on
  the full (G, A) matrix, -1 outside the prior, ``linear_sum_assignment`` on
  all of it. The optima of all three are evaluated on the full float64
  matrix and must be equal;
* ``FG`` / ``FG-ref``: the foreground-loss baseline
  (``ForegroundLossAssigner``), sparse and ``sparse=False``; same
  ``gt_inds``.

``--radii``: 0 is the CrowdHuman prior (the whole box), 1.5 the COCO one (a
1.5-stride centre square clipped to the box).
"""
import argparse
import os.path as osp
from typing import List, Optional


import torch  # noqa: E402
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

import bench_utils as bu  # noqa: E402
from mmlla.models.task_modules.assigners import sparse_utils  # noqa: E402
from mmlla.models.task_modules.assigners import (  # noqa: E402
    ForegroundLossAssigner, POTOAssigner)

ALPHA = 0.8
NUM_CLASSES = 80
QUICK_HW = (256, 384)
# optima are sums of the same float32 qualities in float64: equal up to
# the order of the additions
OPTIMUM_RTOL = 1e-9


@torch.no_grad()
def dense_quality(priors, scores, bboxes, gt_boxes, gt_labels,
                  radius: float) -> torch.Tensor:
    """The full (G, A) POTO quality (docs/algorithms.md section 2, steps 1-2):
    p^(1 - alpha) * IoU^alpha, -1 outside the spatial prior."""
    xs, ys, strides = priors[:, 0], priors[:, 1], priors[:, 2]
    x1, y1, x2, y2 = (gt_boxes[:, i:i + 1] for i in range(4))
    if radius > 0:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        r = radius * strides[None]
        x1, x2 = torch.maximum(x1, cx - r), torch.minimum(x2, cx + r)
        y1, y2 = torch.maximum(y1, cy - r), torch.minimum(y2, cy + r)
    inside = ((xs > x1) & (ys > y1) & (x2 > xs) & (y2 > ys))
    prob = scores[:, gt_labels].t()
    iou = bbox_overlaps(gt_boxes, bboxes)
    quality = prob**(1 - ALPHA) * iou**ALPHA
    return torch.where(inside, quality, torch.full_like(quality, -1.0))


def dense_poto(priors, scores, bboxes, gt_boxes, gt_labels, radius):
    """Hungarian on the whole matrix: (gt indices, point indices)."""
    quality = dense_quality(priors, scores, bboxes, gt_boxes, gt_labels,
                            radius)
    return linear_sum_assignment(
        quality.cpu().double().numpy(), maximize=True)


def pairs_of(gt_inds):
    """(GT indices, point indices) of the positives of ``gt_inds``."""
    gt_inds = gt_inds.cpu()
    points = (gt_inds > 0).nonzero(as_tuple=True)[0]
    return (gt_inds[points] - 1).numpy(), points.numpy()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--gts', type=int, nargs='+',
                        default=[10, 50, 100, 300, 1000])
    parser.add_argument('--radii', type=float, nargs='+', default=[0.0, 1.5])
    parser.add_argument('--sparse-min-pairs', type=int, default=None,
                        help='set sparse_utils.SPARSE_MIN_PAIRS and '
                        'SPARSE_MIN_PAIRS_CUDA (the sizes up to which the '
                        'assigners take their dense path on a CPU / CUDA; '
                        '--quick: 0); restored on return')
    parser.add_argument('--no-baseline', action='store_true',
                        help='skip the ForegroundLossAssigner rows')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--devices', '--device', nargs='+', default=None,
                        dest='devices', help='cpu and/or cuda')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    bu.quiet_warnings()
    img_hw = bu.COCO_HW
    if args.quick:
        img_hw, args.gts, args.repeats, args.warmup = QUICK_HW, [5, 20], 2, 0
        if args.sparse_min_pairs is None:
            args.sparse_min_pairs = 0
    torch.set_num_threads(args.threads)
    with bu.sparse_min_pairs(sparse_utils, args.sparse_min_pairs):
        results = run(args, img_hw)
    report(results, args, img_hw)
    return dict(results=results, targets=check_targets(results))


def run(args, img_hw) -> List[dict]:
    """Measure every case; the rows of the table."""
    results = []
    for device in bu.devices(args.devices):
        for radius in args.radii:
            for g in args.gts:
                gen = torch.Generator().manual_seed(args.seed + g)
                priors, _ = bu.make_priors(img_hw)
                gt_boxes = bu.make_crowd(g, img_hw, gen)
                bboxes = bu.make_predictions(priors, gt_boxes, gen)
                scores = bu.make_scores(len(priors), NUM_CLASSES, gen)
                labels = torch.randint(NUM_CLASSES, (g, ), generator=gen)
                priors, gt_boxes, bboxes, scores, labels = (
                    t.to(device)
                    for t in (priors, gt_boxes, bboxes, scores, labels))
                pred = InstanceData(priors=priors, scores=scores,
                                    bboxes=bboxes)
                gt = InstanceData(bboxes=gt_boxes, labels=labels)
                assigner = POTOAssigner(alpha=ALPHA,
                                        center_sampling_radius=radius)
                ref = POTOAssigner(alpha=ALPHA,
                                   center_sampling_radius=radius,
                                   sparse=False)
                runners = {
                    'POTO': lambda: assigner.assign(pred, gt).gt_inds,
                    'ref': lambda: ref.assign(pred, gt).gt_inds,
                    'dense': lambda: dense_poto(priors, scores, bboxes,
                                                gt_boxes, labels, radius),
                }
                if not args.no_baseline:
                    fg = ForegroundLossAssigner(center_sampling_radius=radius)
                    fg_ref = ForegroundLossAssigner(
                        center_sampling_radius=radius, sparse=False)
                    runners['FG'] = lambda: fg.assign(pred, gt).gt_inds
                    runners['FG-ref'] = lambda: fg_ref.assign(pred,
                                                              gt).gt_inds
                mine, mine_ref = runners['POTO'](), runners['ref']()
                full = dense_quality(priors, scores, bboxes, gt_boxes,
                                     labels, radius).cpu().double().numpy()
                optima = {}
                for name, gt_inds in (('POTO', mine), ('ref', mine_ref)):
                    r, c = pairs_of(gt_inds)
                    optima[name] = float(full[r, c].sum())
                r_ref, c_ref = runners['dense']()
                optima['dense'] = float(full[r_ref, c_ref].sum())
                tol = OPTIMUM_RTOL * max(1.0, abs(optima['dense']))
                same_opt = (int((mine > 0).sum()) == min(g, len(priors))
                            and all(abs(v - optima['dense']) <= tol
                                    for v in optima.values()))
                same = torch.equal(mine, mine_ref)
                if not args.no_baseline:
                    same = same and torch.equal(runners['FG'](),
                                                runners['FG-ref']())
                in_prior = int((full > -1).any(axis=0).sum())
                pairs = int((full > -1).sum())
                times = bu.time_side_by_side(runners, args.repeats,
                                             args.warmup, device)
                results.append(
                    dict(device=device, radius=radius, num_gts=g,
                         num_points=len(priors), in_prior=in_prior,
                         pairs=pairs, optima=optima, same_optimum=same_opt,
                         same_gt_inds=same, times=times))
    return results


def report(results, args, img_hw) -> None:
    print(f'\nMachine: {bu.machine_line()}\n')
    for device in dict.fromkeys(r['device'] for r in results):
        rows = [r for r in results if r['device'] == device]
        print(f'### POTO Hungarian on {device}: input {img_hw[0]}x'
              f'{img_hw[1]}, A={rows[0]["num_points"]}, C={NUM_CLASSES}\n')
        print(f'Time per call, median of {args.repeats} interleaved rounds. '
              '"in-prior pairs": (GT, point) pairs inside the prior; '
              '"points in a prior": points inside some prior. "dense/POTO" '
              '> 1: POTO is faster. "same optimum": POTO, ref and dense '
              'reach the same total quality on the full matrix; "same '
              'gt_inds": POTO = ref (and FG = FG-ref).\n')
        fg = 'FG' in rows[0]['times']
        headers = (['prior radius', 'G', 'in-prior pairs',
                    'points in a prior', 'POTO ms', 'ref ms', 'dense ms',
                    'dense/POTO', 'ref/POTO'] +
                   (['FG ms', 'FG-ref ms', 'FG-ref/FG'] if fg else []) +
                   ['optimum', 'same optimum', 'same gt_inds'])
        table = []
        for r in rows:
            t = {k: v * 1e3 for k, v in r['times'].items()}
            table.append(
                [r['radius'], r['num_gts'], r['pairs'], r['in_prior'],
                 t['POTO'], t['ref'], t['dense'], t['dense'] / t['POTO'],
                 t['ref'] / t['POTO']] +
                ([t['FG'], t['FG-ref'], t['FG-ref'] / t['FG']] if fg else [])
                + [f'{r["optima"]["dense"]:.6f}',
                   'yes' if r['same_optimum'] else 'NO',
                   'yes' if r['same_gt_inds'] else 'NO'])
        print(bu.markdown_table(headers, table) + '\n')
        for radius in dict.fromkeys(r['radius'] for r in rows):
            sub = [r for r in rows if r['radius'] == radius]
            if len(sub) > 1:
                sizes = [r['num_gts'] for r in sub]
                slopes = {
                    m: bu.loglog_slope(sizes, [r['times'][m] for r in sub])
                    for m in sub[0]['times']
                }
                print(f'Growth exponent of the time in G, radius {radius} '
                      '(least-squares slope of log time on log G): ' +
                      ', '.join(f'{m} {v:.2f}' for m, v in slopes.items()) +
                      '\n')
    print('### Targets\n')
    print(bu.markdown_table(
        ['target', 'measured', 'met'],
        [[t['target'], t['measured'], 'met' if t['met'] else 'MISSED']
         for t in check_targets(results)]) + '\n')


def check_targets(results) -> List[dict]:
    out = []
    cpu = [r for r in results if r['device'] == 'cpu'] or results
    for r in cpu:
        if r['num_gts'] in (100, 300):
            speed = r['times']['dense'] / r['times']['POTO']
            out.append(dict(
                target=f'POTO >= 5x faster than dense at G={r["num_gts"]} '
                f'(radius {r["radius"]})',
                measured=f'{speed:.1f}x', met=speed >= 5))
    out.append(dict(
        target='same optimum as dense',
        measured=f'{sum(r["same_optimum"] for r in results)}/'
        f'{len(results)} cases',
        met=all(r['same_optimum'] for r in results)))
    out.append(dict(
        target='gt_inds identical to the previous (dense-mask) path',
        measured=f'{sum(r["same_gt_inds"] for r in results)}/'
        f'{len(results)} cases',
        met=all(r['same_gt_inds'] for r in results)))
    return out


if __name__ == '__main__':
    main()
