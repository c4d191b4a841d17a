"""POTOAssigner (Hungarian) end to end against the literal dense POTO.

    python tools/benchmarks/bench_poto.py [--quick] [--gts 10 50 100 300]
        [--radii 1.5 0] [--repeats 3] [--devices cpu cuda] [--threads 1]

The points of an 800x1333 input (COCO, C=80), crowds of G person boxes,
predicted boxes jittered around them and random probabilities. ``dense`` is
§2 of the spec taken literally: the quality on the full (G, A) matrix, -1
outside the spatial prior, then ``scipy.optimize.linear_sum_assignment`` on
all of it. ``POTO`` is ``mmlla``'s ``POTOAssigner`` (which solves a reduced
problem). Both optima are evaluated on the full float64 quality matrix and
must be equal. ``--radii``: 1.5 is the COCO prior (a 1.5-stride centre
region clipped to the box), 0 the CrowdHuman one (the whole box).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

import bench_utils as bu  # noqa: E402
from mmlla.models.task_modules.assigners.poto_assigner import \
    POTOAssigner  # noqa: E402

ALPHA = 0.8
NUM_CLASSES = 80
QUICK_HW = (256, 384)
# optima are sums of the same float32 qualities in float64: equal up to
# the order of the additions
OPTIMUM_RTOL = 1e-9


@torch.no_grad()
def dense_quality(priors, scores, bboxes, gt_boxes, gt_labels,
                  radius: float) -> torch.Tensor:
    """The full (G, A) POTO quality of §2, -1 outside the spatial prior."""
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


@torch.no_grad()
def sparse_poto_prototype(priors, scores, bboxes, gt_boxes, gt_labels,
                          radius):
    """An experiment, not the project's code: the same reduced problem as
    ``POTOAssigner`` (in-prior columns plus G outside ones), but the prior
    mask by four comparisons (no (G, A, 4) stack) and the quality computed
    only at the in-prior (GT, point) pairs, -1 elsewhere. Shows what those
    two changes would buy."""
    xs, ys = priors[:, 0], priors[:, 1]
    x1, y1, x2, y2 = (gt_boxes[:, i:i + 1] for i in range(4))
    if radius > 0:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        r = radius * priors[:, 2][None]
        x1, x2 = torch.maximum(x1, cx - r), torch.minimum(x2, cx + r)
        y1, y2 = torch.maximum(y1, cy - r), torch.minimum(y2, cy + r)
    inside = (xs > x1) & (ys > y1) & (x2 > xs) & (y2 > ys)
    in_any = inside.any(dim=0)
    cols = torch.cat([
        in_any.nonzero(as_tuple=True)[0],
        (~in_any).nonzero(as_tuple=True)[0][:len(gt_boxes)]
    ]).sort().values
    sub = inside[:, cols]
    gi, ci = sub.nonzero(as_tuple=True)
    ai = cols[ci]
    iou = bbox_overlaps(gt_boxes[gi], bboxes[ai], is_aligned=True)
    q = scores[ai, gt_labels[gi]]**(1 - ALPHA) * iou**ALPHA
    quality = torch.full(sub.shape, -1.0, dtype=torch.float64)
    quality[gi, ci] = q.double().cpu()
    rows, sub_cols = linear_sum_assignment(quality.numpy(), maximize=True)
    return rows, cols.cpu()[torch.as_tensor(sub_cols)].numpy()


def poto_pairs(assigner, pred, gt):
    gt_inds = assigner.assign(pred, gt).gt_inds.cpu()
    points = (gt_inds > 0).nonzero(as_tuple=True)[0]
    return (gt_inds[points] - 1).numpy(), points.numpy()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--gts', type=int, nargs='+',
                        default=[10, 50, 100, 300])
    parser.add_argument('--radii', type=float, nargs='+', default=[1.5, 0.0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--devices', nargs='+', default=None)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    bu.quiet_warnings()
    img_hw = bu.COCO_HW
    if args.quick:
        img_hw, args.gts, args.repeats, args.warmup = QUICK_HW, [5, 20], 2, 0
    torch.set_num_threads(args.threads)
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
                runners = {
                    'POTO': lambda: poto_pairs(assigner, pred, gt),
                    'dense': lambda: dense_poto(priors, scores, bboxes,
                                                gt_boxes, labels, radius),
                    'sparse': lambda: sparse_poto_prototype(
                        priors, scores, bboxes, gt_boxes, labels, radius),
                }
                (r_mine, c_mine), (r_ref, c_ref) = (runners['POTO'](),
                                                    runners['dense']())
                full = dense_quality(priors, scores, bboxes, gt_boxes,
                                     labels, radius).cpu().double().numpy()
                opt_mine = float(full[r_mine, c_mine].sum())
                opt_ref = float(full[r_ref, c_ref].sum())
                r_sp, c_sp = runners['sparse']()
                opt_sparse = float(full[r_sp, c_sp].sum())
                tol = OPTIMUM_RTOL * max(1.0, abs(opt_ref))
                same_opt = (len(r_mine) == g
                            and abs(opt_mine - opt_ref) <= tol
                            and abs(opt_sparse - opt_ref) <= tol)
                mine_pairs = set(zip(r_mine.tolist(), c_mine.tolist()))
                ref_pairs = set(zip(r_ref.tolist(), c_ref.tolist()))
                in_prior = int((full > -1).any(axis=0).sum())
                times = bu.time_side_by_side(runners, args.repeats,
                                             args.warmup, device)
                results.append(
                    dict(device=device, radius=radius, num_gts=g,
                         num_points=len(priors), in_prior=in_prior,
                         opt_mine=opt_mine, opt_ref=opt_ref,
                         same_optimum=same_opt,
                         same_pairs=mine_pairs == ref_pairs, times=times))
    report(results, args, img_hw)
    return dict(results=results, targets=check_targets(results))


def report(results, args, img_hw) -> None:
    print(f'\nMachine: {bu.machine_line()}\n')
    for device in dict.fromkeys(r['device'] for r in results):
        rows = [r for r in results if r['device'] == device]
        print(f'### POTO Hungarian on {device}: input {img_hw[0]}x'
              f'{img_hw[1]}, A={rows[0]["num_points"]}, C={NUM_CLASSES}\n')
        print(f'Time per call, median of {args.repeats} interleaved rounds. '
              '"points in a prior": columns that are not -1 for every GT. '
              '"sparse prototype": an experiment in this script (quality only '
              'at in-prior pairs), not mmlla code. "same optimum": POTO, '
              'dense and the prototype reach the same total quality.\n')
        headers = ['prior radius', 'G', 'points in a prior', 'POTO ms',
                   'dense ms', 'dense/POTO', 'sparse prototype ms',
                   'dense/sparse', 'optimum (POTO)',
                   'optimum (dense)', 'same optimum', 'same pairs']
        table = [[
            r['radius'], r['num_gts'], r['in_prior'],
            r['times']['POTO'] * 1e3, r['times']['dense'] * 1e3,
            r['times']['dense'] / r['times']['POTO'],
            r['times']['sparse'] * 1e3,
            r['times']['dense'] / r['times']['sparse'], f'{r["opt_mine"]:.6f}',
            f'{r["opt_ref"]:.6f}', 'yes' if r['same_optimum'] else 'NO',
            'yes' if r['same_pairs'] else 'no (ties)'
        ] for r in rows]
        print(bu.markdown_table(headers, table) + '\n')
    print('### Targets\n')
    print(bu.markdown_table(
        ['target', 'measured', 'met'],
        [[t['target'], t['measured'], 'met' if t['met'] else 'MISSED']
         for t in check_targets(results)]) + '\n')


def check_targets(results) -> List[dict]:
    out = []
    cpu = [r for r in results if r['device'] == 'cpu'] or results
    at100 = [r for r in cpu if r['num_gts'] == 100]
    for r in at100:
        speed = r['times']['dense'] / r['times']['POTO']
        out.append(dict(
            target=f'POTO >= 5x faster than dense at G=100 '
            f'(radius {r["radius"]})',
            measured=f'{speed:.1f}x', met=speed >= 5))
    out.append(dict(
        target='same optimum as dense',
        measured=f'{sum(r["same_optimum"] for r in results)}/'
        f'{len(results)} cases',
        met=all(r['same_optimum'] for r in results)))
    return out


if __name__ == '__main__':
    main()
