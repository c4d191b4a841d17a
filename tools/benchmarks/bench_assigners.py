"""LossAwareAssigner against a literal dense LLA and mmdet's cost-based
assigners, side by side on the same inputs.

    python tools/benchmarks/bench_assigners.py [--quick] [--repeats 5]
        [--ch-gts 10 50 100 300 1000] [--coco-gts 10 50 100]
        [--num-ignore 0] [--no-memory] [--device cpu cuda] [--threads 1]
        [--try-chunk 262144] [--sparse-min-pairs N]

Two scales: CrowdHuman (C=1, the points of an 800x1400 input) and COCO
(C=80, 800x1333). For each number of GTs G, one crowd of tall overlapping
person boxes, predicted boxes jittered around them and random probabilities
are fed to

* ``LLA``: ``mmlla``'s ``LossAwareAssigner`` (defaults: topk 10, reg 1.5;
  its sparse path: costs at the in-box pairs listed from grid indices);
* ``LLA-ref``: ``LossAwareAssigner(sparse=False)``, its dense path (the
  (G, A) cost in chunks of rows); same ``gt_inds``;
* ``dense``: the reference below, written from docs/algorithms.md section 1
  literally: the (G, A, C) focal-loss tensor, the (G, A) cost, top-k per
  GT; a point chosen once goes to its GT, a point chosen several times to
  the argmin of its whole cost column (every GT and ignore region, chosen or
  not). Its ``gt_inds`` must equal LLA's exactly;
* mmdet's ``DynamicSoftLabelAssigner`` (``DSLA``, RTMDet; logits in),
  ``SimOTAAssigner`` (YOLOX) and ``ATSSAssigner`` (square anchors of 8
  strides at the points, ``num_level_priors``), with their defaults.

``--try-chunk N`` adds ``LLA-chunkN``: the same assigner with its module
constant ``MAX_PAIRS_PER_CHUNK`` set to N (an experiment; its ``gt_inds``
are checked too). ``--sparse-min-pairs N`` sets
``loss_aware_assigner.SPARSE_MIN_PAIRS`` (up to ``G x A = N`` LLA takes its
dense path; ``--quick`` sets 0 so that its small inputs run the sparse path;
restored on return).

Times are medians of ``--repeats`` rounds in which every assigner runs once,
in rotating order. Peak memory is what one call adds (CPU: peak RSS of a
forked child with a fixed 4 KiB mmap threshold; CUDA:
``max_memory_allocated``), see ``bench_utils.peak_memory_mb``.
"""
import argparse
import os.path as osp
from typing import Dict, List, Optional


import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mmdet.models.task_modules.assigners import (  # noqa: E402
    ATSSAssigner, DynamicSoftLabelAssigner, SimOTAAssigner)
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import bench_utils as bu  # noqa: E402
import mmlla.models.task_modules.assigners.loss_aware_assigner as \
    lla_module  # noqa: E402
from mmlla.models.task_modules.assigners.loss_aware_assigner import \
    LossAwareAssigner  # noqa: E402

METHODS = ('LLA', 'dense', 'LLA-ref', 'DSLA', 'SimOTA', 'ATSS')
QUICK_HW = (256, 384)
# LLA's constants (docs/algorithms.md section 1), repeated here on purpose:
# the reference must not share code with the implementation it checks.
TOPK, REG_COST, ALPHA, GAMMA = 10, 1.5, 0.25, 2.0
OUTSIDE_COST, INSIDE_MARGIN = 1000.0, 0.01
IOU_EPS = torch.finfo(torch.float32).eps
PROB_EPS = 1e-12


@torch.no_grad()
def dense_lla_reference(priors, scores, bboxes, gt_boxes, gt_labels,
                        ignore_boxes=None):
    """LLA as docs/algorithms.md section 1 states it, on full tensors (the
    original implementation's way): returns ``gt_inds`` (A,) 0 bg, k + 1
    for GT k, -1 ignore."""
    num_gts = len(gt_boxes)
    if ignore_boxes is not None and len(ignore_boxes):
        gt_boxes = torch.cat([gt_boxes, ignore_boxes])
        gt_labels = torch.cat(
            [gt_labels, gt_labels.new_zeros(len(ignore_boxes))])
    num_rows, num_points, num_classes = len(gt_boxes), *scores.shape
    xs, ys = priors[:, 0], priors[:, 1]
    # 1. strictly inside, 0.01 px margin
    deltas = torch.stack([
        xs[None] - gt_boxes[:, 0:1], ys[None] - gt_boxes[:, 1:2],
        gt_boxes[:, 2:3] - xs[None], gt_boxes[:, 3:4] - ys[None]
    ], dim=-1)
    inside = deltas.min(dim=-1).values > INSIDE_MARGIN  # (G, A)
    # 2. focal loss of every point against every GT's one-hot target,
    # summed over the classes: the (G, A, C) tensor
    p = scores[None].expand(num_rows, num_points, num_classes)
    t = F.one_hot(gt_labels.long(), num_classes).to(scores)[:, None, :]
    p_t = p * t + (1 - p) * (1 - t)
    alpha_t = ALPHA * t + (1 - ALPHA) * (1 - t)
    loss_cls = (-alpha_t * (1 - p_t).pow(GAMMA) *
                p_t.clamp(min=PROB_EPS).log()).sum(dim=-1)
    iou = bbox_overlaps(gt_boxes, bboxes)
    loss_reg = -iou.clamp(min=IOU_EPS).log()
    cost = loss_cls + REG_COST * loss_reg + OUTSIDE_COST * (~inside).float()
    # 3. each GT's top-k cheapest points
    k = min(TOPK, num_points)
    index = cost.topk(k, dim=1, largest=False).indices
    chosen = torch.zeros_like(inside).scatter_(1, index, True)
    # 4. a point chosen by one row goes to that row; a point chosen by
    # several rows goes to the cheapest row of its whole cost column, chosen
    # or not (first on ties)
    num_claims = chosen.sum(dim=0)
    only_row = chosen.to(torch.uint8).argmax(dim=0)  # its row if chosen once
    row = torch.where(num_claims >= 2, cost.argmin(dim=0), only_row)
    gt_inds = torch.where(row < num_gts, row + 1, -torch.ones_like(row))
    # 5. and 6.: unchosen points are background; points that went to an
    # ignore region are -1
    return torch.where(num_claims > 0, gt_inds, torch.zeros_like(gt_inds))


def make_case(img_hw, num_gts, num_classes, num_ignore, seed, device):
    """Every input of one benchmark row."""
    gen = torch.Generator().manual_seed(seed)
    priors, num_level = bu.make_priors(img_hw)
    gt_boxes = bu.make_crowd(num_gts, img_hw, gen)
    ignore = bu.make_crowd(num_ignore, img_hw, gen) if num_ignore else \
        torch.zeros(0, 4)
    bboxes = bu.make_predictions(priors, gt_boxes, gen)
    scores = bu.make_scores(len(priors), num_classes, gen)
    labels = torch.randint(num_classes, (num_gts, ), generator=gen)
    case = dict(
        priors=priors, anchors=bu.square_anchors(priors), scores=scores,
        logits=torch.logit(scores), bboxes=bboxes, gt_boxes=gt_boxes,
        gt_labels=labels, ignore=ignore)
    case = {k: v.to(device) for k, v in case.items()}
    case['num_level'] = num_level
    return case


def with_chunk(fn, pairs: int):
    """``fn`` run with ``LossAwareAssigner``'s chunk size set to ``pairs``
    (an experiment on the module constant; restored afterwards)."""

    def run():
        saved = lla_module.MAX_PAIRS_PER_CHUNK
        lla_module.MAX_PAIRS_PER_CHUNK = pairs
        try:
            return fn()
        finally:
            lla_module.MAX_PAIRS_PER_CHUNK = saved

    return run


def make_runners(case, try_chunk: Optional[int] = None) -> Dict[str,
                                                                  callable]:
    """One zero-argument callable per assigner, returning ``gt_inds``."""
    gt = InstanceData(bboxes=case['gt_boxes'], labels=case['gt_labels'])
    ign = InstanceData(bboxes=case['ignore']) if len(case['ignore']) else None
    pred = InstanceData(
        priors=case['priors'], scores=case['scores'], bboxes=case['bboxes'])
    pred_logits = InstanceData(
        priors=case['priors'], scores=case['logits'], bboxes=case['bboxes'])
    pred_anchors = InstanceData(priors=case['anchors'])
    lla = LossAwareAssigner(topk=TOPK, reg_cost=REG_COST, alpha=ALPHA,
                            gamma=GAMMA, prior_type='point')
    lla_ref = LossAwareAssigner(topk=TOPK, reg_cost=REG_COST, alpha=ALPHA,
                                gamma=GAMMA, prior_type='point',
                                sparse=False)
    dsla, simota, atss = (DynamicSoftLabelAssigner(), SimOTAAssigner(),
                          ATSSAssigner(topk=9))
    runners = {
        'LLA': lambda: lla.assign(pred, gt, ign).gt_inds,
        'dense': lambda: dense_lla_reference(
            case['priors'], case['scores'], case['bboxes'], case['gt_boxes'],
            case['gt_labels'], case['ignore']),
        'LLA-ref': lambda: lla_ref.assign(pred, gt, ign).gt_inds,
        'DSLA': lambda: dsla.assign(pred_logits, gt).gt_inds,
        'SimOTA': lambda: simota.assign(pred, gt).gt_inds,
        'ATSS': lambda: atss.assign(pred_anchors, case['num_level'],
                                    gt).gt_inds,
    }
    if try_chunk:
        runners[chunk_name(try_chunk)] = with_chunk(runners['LLA'], try_chunk)
    return runners


def in_box_pairs(case) -> int:
    """(row, point) pairs with the point strictly inside the box (0.01 px),
    GTs and ignore regions: what LLA's sparse path costs."""
    boxes = torch.cat([case['gt_boxes'], case['ignore']])
    xs, ys = case['priors'][:, 0], case['priors'][:, 1]
    total = 0
    for start in range(0, len(boxes), 64):
        b = boxes[start:start + 64]
        total += int(((xs - b[:, 0:1] > INSIDE_MARGIN) &
                      (ys - b[:, 1:2] > INSIDE_MARGIN) &
                      (b[:, 2:3] - xs > INSIDE_MARGIN) &
                      (b[:, 3:4] - ys > INSIDE_MARGIN)).sum())
    return total


def chunk_name(pairs: int) -> str:
    return f'LLA-chunk{pairs}'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='a seconds-long smoke run on a small input')
    parser.add_argument('--ch-gts', type=int, nargs='+',
                        default=[10, 50, 100, 300, 1000])
    parser.add_argument('--coco-gts', type=int, nargs='+',
                        default=[10, 50, 100])
    parser.add_argument('--num-ignore', type=int, default=0,
                        help='ignore regions per image (LLA and dense only; '
                        'the mmdet assigners ignore them)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS)
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument('--try-chunk', type=int, default=None,
                        help='also time LossAwareAssigner with its '
                        'MAX_PAIRS_PER_CHUNK set to this (an experiment)')
    parser.add_argument('--devices', '--device', nargs='+', default=None,
                        dest='devices', help='cpu and/or cuda')
    parser.add_argument('--sparse-min-pairs', type=int, default=None,
                        help='set loss_aware_assigner.SPARSE_MIN_PAIRS and '
                        'SPARSE_MIN_PAIRS_CUDA (restored on return)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads for the timing phase')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LLA' not in args.methods or 'dense' not in args.methods:
        parser.error('--methods must include LLA and dense')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the benchmark, print the tables; return the measurements."""
    args = parse_args(argv)
    bu.quiet_warnings()
    scales = [('CrowdHuman', bu.CROWDHUMAN_HW, 1, args.ch_gts),
              ('COCO', bu.COCO_HW, 80, args.coco_gts)]
    if args.quick:
        scales = [('CrowdHuman', QUICK_HW, 1, [5, 20]),
                  ('COCO', QUICK_HW, 80, [5, 10])]
        args.repeats, args.warmup = 2, 0
        args.num_ignore = max(args.num_ignore, 2)
        if args.sparse_min_pairs is None:
            args.sparse_min_pairs = 0
    with bu.sparse_min_pairs(lla_module, args.sparse_min_pairs):
        results = run(args, scales)
    report(results, args)
    return dict(results=results, targets=check_targets(results))


def run(args, scales) -> List[dict]:
    """Measure every case; the rows of the tables."""
    torch.set_num_threads(args.threads)
    results = []
    for device in bu.devices(args.devices):
        cases = []
        for scale, img_hw, num_classes, gts in scales:
            for g in gts:
                case = make_case(img_hw, g, num_classes, args.num_ignore,
                                 args.seed + g, device)
                cases.append((scale, img_hw, num_classes, g, case))
        memory = {}
        if not args.no_memory:
            for scale, _, _, g, case in cases:
                runners = make_runners(case, args.try_chunk)
                for name in runners:
                    if name not in args.methods and \
                            name != chunk_name(args.try_chunk or 0):
                        continue
                    memory[scale, g, name] = bu.peak_memory_mb(
                        runners[name], device)
        for scale, img_hw, num_classes, g, case in cases:
            runners = {
                k: v
                for k, v in make_runners(case, args.try_chunk).items()
                if k in args.methods or k.startswith('LLA-chunk')
            }
            mine, ref = runners['LLA'](), runners['dense']()
            mismatches = int((mine != ref).sum())
            if 'LLA-ref' in runners:
                mismatches += int((runners['LLA-ref']() != ref).sum())
            if args.try_chunk:
                chunked = runners[chunk_name(args.try_chunk)]()
                mismatches += int((chunked != ref).sum())
            times = bu.time_side_by_side(runners, args.repeats, args.warmup,
                                         device)
            results.append(
                dict(device=device, scale=scale, img_hw=img_hw,
                     num_classes=num_classes, num_gts=g,
                     num_points=len(case['priors']),
                     num_ignore=len(case['ignore']),
                     num_pos=int((mine > 0).sum()), mismatches=mismatches,
                     in_box=in_box_pairs(case),
                     identical=mismatches == 0, times=times,
                     memory={
                         name: memory.get((scale, g, name))
                         for name in runners
                     }))
    return results


def report(results: List[dict], args) -> None:
    """Print one time table and one memory table per device and scale."""
    print(f'\nMachine: {bu.machine_line()}\n')
    others = [m for m in args.methods if m not in ('LLA', 'dense')]
    if args.try_chunk:
        others.append(chunk_name(args.try_chunk))
    for device in dict.fromkeys(r['device'] for r in results):
        for scale in dict.fromkeys(r['scale'] for r in results):
            rows = [r for r in results
                    if r['device'] == device and r['scale'] == scale]
            if not rows:
                continue
            r0 = rows[0]
            print(f'### {scale} scale on {device}: C={r0["num_classes"]}, '
                  f'input {r0["img_hw"][0]}x{r0["img_hw"][1]}, '
                  f'A={r0["num_points"]}, ignore regions '
                  f'{r0["num_ignore"]}\n')
            headers = (['G', 'LLA ms', 'LLA us/GT', 'dense ms', 'dense/LLA'] +
                       [f'{m} ms' for m in others] +
                       [f'{m}/LLA' for m in others] +
                       ['same gt_inds', 'positives', 'in-box pairs'])
            table = []
            for r in rows:
                t = {k: v * 1e3 for k, v in r['times'].items()}
                table.append(
                    [r['num_gts'], t['LLA'], 1e3 * t['LLA'] / r['num_gts'],
                     t['dense'],
                     t['dense'] / t['LLA']] + [t[m] for m in others] +
                    [t[m] / t['LLA'] for m in others] +
                    ['yes' if r['identical'] else
                     f'NO ({r["mismatches"]} points)', r['num_pos'],
                     r['in_box']])
            print(f'Time per call, median of {args.repeats} interleaved '
                  'rounds; X/LLA > 1 means LLA is faster.\n')
            print(bu.markdown_table(headers, table) + '\n')
            if rows[0]['memory'].get('LLA') is not None:
                how = ('torch.cuda.max_memory_allocated minus the allocation '
                       'before the call' if device.startswith('cuda') else
                       'peak RSS of a forked child (glibc mmap threshold '
                       'fixed at 4 KiB) minus its RSS before the call')
                print(f'Peak memory added by one call, MiB ({how}).\n')
                headers = (['G', 'LLA', 'dense', 'LLA/dense'] + others)
                table = [[
                    r['num_gts'], r['memory']['LLA'], r['memory']['dense'],
                    r['memory']['LLA'] / max(r['memory']['dense'], 1e-9)
                ] + [r['memory'][m] for m in others] for r in rows]
                print(bu.markdown_table(headers, table) + '\n')
            if len(rows) > 1:
                sizes = [r['num_gts'] for r in rows]
                slopes = {
                    m: bu.loglog_slope(sizes, [r['times'][m] for r in rows])
                    for m in rows[0]['times']
                }
                print('Growth exponent of the time in G (least-squares slope '
                      'of log time on log G; 1 = linear): ' +
                      ', '.join(f'{m} {v:.2f}' for m, v in slopes.items()) +
                      '\n')
    targets = check_targets(results)
    print('### Targets\n')
    print(bu.markdown_table(['target', 'measured', 'met'],
                            [[t['target'], t['measured'],
                              'met' if t['met'] else 'MISSED']
                             for t in targets]) + '\n')


def check_targets(results: List[dict]) -> List[dict]:
    """The issue's targets, evaluated on the CPU rows."""
    cpu = [r for r in results if r['device'] == 'cpu'] or results
    out = []
    coco = [r for r in cpu if r['scale'] == 'COCO']
    ch = [r for r in cpu if r['scale'] == 'CrowdHuman']
    if coco:
        speed = min(r['times']['dense'] / r['times']['LLA'] for r in coco)
        out.append(dict(target='COCO: LLA >= 5x faster than dense',
                        measured=f'min dense/LLA {speed:.1f}x',
                        met=speed >= 5))
        if coco[0]['memory'].get('LLA') is not None:
            for r in coco:
                ratio = r['memory']['LLA'] / max(r['memory']['dense'], 1e-9)
                out.append(dict(
                    target='COCO: LLA peak <= 1/20 of dense '
                    f'(G={r["num_gts"]})',
                    measured=f'LLA/dense {ratio:.3f} ({r["memory"]["LLA"]:.0f}'
                    f' vs {r["memory"]["dense"]:.0f} MiB)',
                    met=ratio <= 1 / 20))
    if ch:
        speed = min(r['times']['dense'] / r['times']['LLA'] for r in ch)
        out.append(dict(target='CrowdHuman: LLA not slower than dense',
                        measured=f'min dense/LLA {speed:.2f}x',
                        met=speed >= 1))
    if cpu and 'DSLA' in cpu[0]['times']:
        speed = min(r['times']['DSLA'] / r['times']['LLA'] for r in cpu)
        out.append(dict(target='LLA never slower than DSLA',
                        measured=f'min DSLA/LLA {speed:.2f}x',
                        met=speed >= 1))
    big = [r for r in ch if r['num_gts'] >= 100 and 'LLA-ref' in r['times']]
    if big:
        speed = min(r['times']['LLA-ref'] / r['times']['LLA'] for r in big)
        out.append(dict(
            target='CrowdHuman G >= 100: sparse LLA faster than the '
            'previous (dense) LLA',
            measured=f'min LLA-ref/LLA {speed:.2f}x', met=speed > 1))
        if big[0]['memory'].get('LLA') is not None and len(big) > 1:
            slope = bu.loglog_slope([r['in_box'] for r in big],
                                    [r['memory']['LLA'] for r in big])
            out.append(dict(
                target='CrowdHuman G >= 100: LLA peak memory at most '
                'linear in the in-box pairs',
                measured=f'log-log slope {slope:.2f}', met=slope <= 1.1))
    if len(ch) > 1:
        exp = bu.loglog_slope([r['num_gts'] for r in ch],
                              [r['times']['LLA'] for r in ch])
        out.append(dict(target='LLA time at most linear in G (CrowdHuman)',
                        measured=f'log-log slope {exp:.2f}',
                        met=exp <= 1.1))
    out.append(dict(target='LLA gt_inds identical to dense reference',
                    measured=f'{sum(r["identical"] for r in results)}/'
                    f'{len(results)} cases',
                    met=all(r['identical'] for r in results)))
    return out


if __name__ == '__main__':
    main()
