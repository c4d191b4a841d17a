"""mmdet's CrowdHumanMetric against mmlla's CrowdHumanMRMetric.

    python tools/benchmarks/bench_crowdhuman_metric.py [--num-images 4370]
        [--dets-per-img 300] [--gts-per-img 23] [--seed 0] [--no-ji]
        [--stress-people 2000] [--stress-dets 100000] [--no-unchunked]
        [--repeats 3] [--quick]

Generates a seeded synthetic validation-sized set (a ``.odgt`` file of crowds
with ``mask`` ignore regions, and per image ``--dets-per-img`` detections:
jittered duplicates of the people plus low-scoring false positives), feeds
the same predictions to both metrics (``process`` then ``compute_metrics``,
as mmengine's evaluator does), checks that AP50 and mMR agree within 1e-4
and prints markdown tables:

* time of both metrics (AP and MR; ours: the median of ``--repeats`` runs,
  mmdet's: one run), and the peak Python memory of ours (tracemalloc, in
  another, untimed run);
* unless ``--no-ji``: the time of both Jaccard indices (mmdet's ``JI`` with
  one process, ours ``with_ji=True``) and their values, which differ by
  definition (maximum-cardinality vs CrowdDet's maximum-weight matching);
* one crowded image (``--stress-people`` people, ``--stress-dets``
  detections): the time and peak memory of ours, AP/mMR matching alone and
  with the JI, by blocks of detections (the default) and, unless
  ``--no-unchunked``, in one block (the whole IoU matrix at once, as before
  blocks); peak memory is the RSS high-water mark a call adds (forked
  child, ``bench_utils.peak_memory_mb``) and tracemalloc's peak.

The machine line gives the CPU count and the load average (``os.getloadavg``)
before and after the run: other jobs on the machine slow both metrics.
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import torch


from bench_utils import peak_memory_mb  # noqa: E402
from mmdet.evaluation import CrowdHumanMetric  # noqa: E402

from mmlla.evaluation import CrowdHumanMRMetric  # noqa: E402
from mmlla.evaluation.functional import ImageGT, Prediction  # noqa: E402
from mmlla.evaluation.functional import crowdhuman_mr  # noqa: E402

IMG_W, IMG_H = (600, 1200), (450, 1000)
# At most this share of the detections are jittered copies of people (one
# per person plus a third of them again: duplicates); the rest are FPs.
TRUE_SHARE = 0.4
IGNORES_PER_IMG = (0, 3)
# The crowded image: its size, and its ignore regions.
STRESS_HW = (3000, 4000)
STRESS_IGNORES = 20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=4370)
    parser.add_argument('--dets-per-img', type=int, default=300)
    parser.add_argument('--gts-per-img', type=int, default=23)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--repeats', type=int, default=3,
                        help='runs of ours (median time); mmdet runs once')
    parser.add_argument('--no-ji', action='store_true',
                        help='skip the Jaccard-index comparison')
    parser.add_argument('--stress-people', type=int, default=2000)
    parser.add_argument('--stress-dets', type=int, default=100000)
    parser.add_argument('--no-unchunked', action='store_true',
                        help='skip the one-block run of the crowded image '
                        '(it needs ~5 GiB)')
    parser.add_argument('--quick', action='store_true',
                        help='seconds-long smoke run: 20 images of 50 '
                        'detections, a 200-people / 5000-detection image')
    args = parser.parse_args(argv)
    if args.quick:
        args.num_images, args.dets_per_img = 20, 50
        args.stress_people, args.stress_dets = 200, 5000
        args.no_unchunked = True
        args.repeats = 1
    return args


def make_set(num_images, dets_per_img, gts_per_img, seed):
    """Seeded records (odgt dicts) and mmengine-style data samples."""
    rng = np.random.default_rng(seed)
    records, samples = [], []
    for i in range(num_images):
        w, h = int(rng.integers(*IMG_W)), int(rng.integers(*IMG_H))
        n = int(rng.poisson(gts_per_img))
        bw = rng.uniform(15, 150, n)
        bh = bw * rng.uniform(1.8, 3.0, n)
        # crowds: people around a few centres, some crossing the border
        centres = rng.uniform(0, 1, (3, 2)) * (w, h)
        c = centres[rng.integers(0, 3, n)] + rng.normal(0, 0.15, (n, 2)) * (
            w, h)
        people = np.stack([c[:, 0] - bw / 2, c[:, 1] - bh / 2, bw, bh], 1)
        people = np.round(people)
        gtboxes = [
            dict(tag='person', fbox=p.tolist(), hbox=p.tolist(),
                 extra=dict(ignore=0)) for p in people
        ]
        for _ in range(int(rng.integers(*IGNORES_PER_IMG))):
            m = np.round([rng.uniform(0, w), rng.uniform(0, h),
                          rng.uniform(50, 300), rng.uniform(50, 300)])
            gtboxes.append(dict(tag='mask', fbox=m.tolist(), hbox=m.tolist(),
                                extra=dict(ignore=1)))
        records.append(dict(ID=f'bench{i:06d}', gtboxes=gtboxes))

        n_true = min(int(dets_per_img * TRUE_SHARE), n + n // 3)
        src = people[rng.integers(0, max(n, 1), n_true)] if n else np.zeros(
            (0, 4))
        jit = rng.uniform(0, 0.15, (len(src), 1))
        true = src + rng.normal(0, 1, src.shape) * jit * src[:, [2, 3, 2, 3]]
        n_false = dets_per_img - len(true)
        fw = rng.uniform(15, 150, n_false)
        false = np.stack([
            rng.uniform(-50, w, n_false), rng.uniform(-50, h, n_false), fw,
            fw * rng.uniform(1.5, 3, n_false)
        ], 1)
        boxes = np.concatenate([true, false]).astype(np.float32)
        boxes[:, 2:] += boxes[:, :2]
        scores = np.concatenate([
            rng.uniform(0.2, 1.0, len(true)),
            0.05 + 0.6 * rng.beta(1, 8, n_false)
        ]).astype(np.float32)
        samples.append(
            dict(img_id=records[-1]['ID'], ori_shape=(h, w),
                 pred_instances=dict(bboxes=torch.from_numpy(boxes),
                                     scores=torch.from_numpy(scores))))
    return records, samples


def make_dense_image(num_people=2000, num_dets=100000, seed=0):
    """One crowded image: its :class:`ImageGT` and a :class:`Prediction`.

    ``num_people`` person boxes (15-100 px wide, 1.8-3x as tall) spread over
    a 4000 x 3000 image, 20 ignore regions; half the detections are
    jittered copies of the people (about ``num_dets / 2 / num_people`` per
    person), the others random false positives with lower scores.
    """
    rng = np.random.default_rng(seed)
    h, w = STRESS_HW
    bw = rng.uniform(15, 100, num_people)
    bh = bw * rng.uniform(1.8, 3.0, num_people)
    x = rng.uniform(-20, w - 20, num_people)
    y = rng.uniform(-20, h - 40, num_people)
    people = np.round(np.stack([x, y, x + bw, y + bh], 1))
    corner = np.round(rng.uniform(0, 1, (STRESS_IGNORES, 2)) * (w, h))
    regions = np.hstack(
        [corner, corner + rng.uniform(50, 300, (STRESS_IGNORES, 2))])
    gt = ImageGT(
        np.vstack([people, regions]),
        np.concatenate([
            np.ones(num_people, np.int8),
            np.full(STRESS_IGNORES, -1, np.int8)
        ]))
    n_true = num_dets // 2
    src = people[rng.integers(0, num_people, n_true)]
    wh = src[:, 2:] - src[:, :2]
    true = src + rng.normal(0, 0.08, src.shape) * np.hstack([wh, wh])
    n_false = num_dets - n_true
    fw = rng.uniform(15, 100, n_false)
    fx = rng.uniform(-50, w, n_false)
    fy = rng.uniform(-50, h, n_false)
    false = np.stack(
        [fx, fy, fx + fw, fy + fw * rng.uniform(1.5, 3, n_false)], 1)
    boxes = np.vstack([true, false]).astype(np.float32)
    scores = np.concatenate([
        rng.uniform(0.2, 1, n_true), 0.05 + 0.6 * rng.beta(1, 8, n_false)
    ]).astype(np.float32)
    perm = rng.permutation(num_dets)
    return gt, Prediction('dense', STRESS_HW, boxes[perm], scores[perm])


def run(metric, samples, batch=2):
    start = time.perf_counter()
    for k in range(0, len(samples), batch):
        metric.process(None, samples[k:k + batch])
    out = metric.compute_metrics(metric.results)
    return out, time.perf_counter() - start


def run_median(make_metric, samples, repeats):
    """Result and median time of ``repeats`` runs of fresh metrics."""
    times = []
    for _ in range(max(repeats, 1)):
        out, seconds = run(make_metric(), samples)
        times.append(seconds)
    return out, float(np.median(times)), times


def load_line(label):
    one, five, fifteen = os.getloadavg()
    return f'load average {label}: {one:.2f}, {five:.2f}, {fifteen:.2f}'


def machine_line():
    cpus = len(os.sched_getaffinity(0)) if hasattr(
        os, 'sched_getaffinity') else os.cpu_count()
    return (f'{platform.processor() or platform.machine()}, {cpus} CPUs '
            f'usable (nproc), Python {platform.python_version()}, numpy '
            f'{np.__version__}, torch {torch.__version__}, one torch thread')


def bench_stress(args):
    """Time and peak memory of ours on one crowded image."""
    gt, pred = make_dense_image(args.stress_people, args.stress_dets,
                                args.seed)
    gts = {'dense': gt}
    evaluate = crowdhuman_mr.evaluate_crowdhuman
    rows = []
    modes = [('blocks', None)]
    if not args.no_unchunked:
        modes.append(('one block', 1 << 40))
    labels = {}
    for mode, elems in modes:
        for with_ji in (False, True):
            if mode == 'one block' and with_ji:
                continue  # the JI keeps only pairs above the threshold
            saved = crowdhuman_mr.CHUNK_ELEMS
            if elems is not None:
                crowdhuman_mr.CHUNK_ELEMS = elems
            try:
                def call():
                    return evaluate(gts, [pred], with_ji=with_ji)

                start = time.perf_counter()
                out = call()
                seconds = time.perf_counter() - start
                tracemalloc.start()
                call()
                traced = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                rss = peak_memory_mb(call)
            finally:
                crowdhuman_mr.CHUNK_ELEMS = saved
            labels[mode] = (out['recall_curve'], out['precision_curve'])
            rows.append(
                dict(mode=mode, ji=with_ji, seconds=seconds, rss_mib=rss,
                     traced_mib=traced, AP50=out['AP50'], mMR=out['mMR'],
                     JI=out.get('JI')))
    same = all(
        all(np.array_equal(a, b) for a, b in zip(v, labels['blocks']))
        for v in labels.values())
    return rows, same


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    load_before = load_line('before')
    records, samples = make_set(args.num_images, args.dets_per_img,
                                args.gts_per_img, args.seed)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        ann_file = osp.join(tmp, 'annotation_val.odgt')
        with open(ann_file, 'w') as f:
            for r in records:
                f.write(json.dumps(r) + '\n')
        num_people = sum(
            sum(b['tag'] == 'person' for b in r['gtboxes']) for r in records)
        print(f'{len(records)} images, {num_people / len(records):.1f} people '
              f'and {args.dets_per_img} detections per image', flush=True)

        ours, t_ours, times = run_median(
            lambda: CrowdHumanMRMetric(ann_file), samples, args.repeats)
        print(f'mmlla CrowdHumanMRMetric: {t_ours:.2f} s (median of '
              f'{[round(t, 2) for t in times]}) {ours}', flush=True)
        tracemalloc.start()
        run(CrowdHumanMRMetric(ann_file), samples)
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

        print('mmdet CrowdHumanMetric (AP, MR) ...', flush=True)
        ref, t_ref = run(
            CrowdHumanMetric(ann_file, metric=['AP', 'MR'],
                             num_ji_process=1), samples)
        print(f'mmdet CrowdHumanMetric: {t_ref:.2f} s {dict(ref)}',
              flush=True)
        if not args.no_ji:
            ours_ji, t_ours_ji, times = run_median(
                lambda: CrowdHumanMRMetric(ann_file, with_ji=True), samples,
                args.repeats)
            print(f'mmlla with_ji: {t_ours_ji:.2f} s (median of '
                  f'{[round(t, 2) for t in times]})', flush=True)
            print('mmdet CrowdHumanMetric (JI) ...', flush=True)
            ref_ji, t_ref_ji = run(
                CrowdHumanMetric(ann_file, metric=['JI'], num_ji_process=1),
                samples)
            print(f'mmdet JI: {t_ref_ji:.2f} s {dict(ref_ji)}', flush=True)
    results['main'] = dict(ours=ours, ref=dict(ref), t_ours=t_ours,
                           t_ref=t_ref, peak_mib=peak_mib)

    print('crowded image ...', flush=True)
    stress, stress_same = bench_stress(args)
    results['stress'] = stress
    results['stress_same'] = stress_same
    load_after = load_line('after')

    d_ap = abs(ours['AP50'] - ref['mAP'])
    d_mr = abs(ours['mMR'] - ref['mMR'])
    agree = d_ap <= 1e-4 and d_mr <= 1e-4
    results['agree'] = agree
    print(f'\n|AP50 diff| {d_ap:.2e}, |mMR diff| {d_mr:.2e} -> '
          f'{"agree" if agree else "DISAGREE"} (mmdet rounds to 1e-4)\n')
    print('| images | people/img | dets/img | AP50 | mMR | recall | '
          f'mmdet time (s) | ours time (s, median of {args.repeats}) | '
          'speed-up | ours peak Python memory (MiB) |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    print(f'| {len(records)} | {num_people / len(records):.1f} | '
          f'{args.dets_per_img} | {100 * ours["AP50"]:.2f} | '
          f'{100 * ours["mMR"]:.2f} | {100 * ours["recall"]:.2f} | '
          f'{t_ref:.1f} | {t_ours:.2f} | {t_ref / t_ours:.0f}x | '
          f'{peak_mib:.0f} |')
    if not args.no_ji:
        # ours with_ji also computes AP/mMR: its JI share is the difference
        t_ji_only = max(t_ours_ji - t_ours, 1e-9)
        results['ji'] = dict(ours=ours_ji['JI'], ref=ref_ji['JI'],
                             t_ours=t_ours_ji, t_ref=t_ref_ji)
        print('\n| JI | mmdet JI (s) | ours AP+mMR+JI (s, median of '
              f'{args.repeats}) | ours JI part (s) | speed-up (JI) | mmdet '
              'JI | ours JI | difference |')
        print('|---|---:|---:|---:|---:|---:|---:|---:|')
        print(f'| max-cardinality (mmdet) vs max-weight (CrowdDet) | '
              f'{t_ref_ji:.1f} | {t_ours_ji:.2f} | {t_ji_only:.2f} | '
              f'{t_ref_ji / t_ji_only:.0f}x | {100 * ref_ji["JI"]:.2f} | '
              f'{100 * ours_ji["JI"]:.2f} | '
              f'{100 * (ours_ji["JI"] - ref_ji["JI"]):+.2f} |')
    print(f'\nOne {STRESS_HW[1]}x{STRESS_HW[0]} image, '
          f'{args.stress_people} people, {args.stress_dets} detections '
          f'(ours; peak = what one call adds):\n')
    print('| overlaps | JI | time (s) | peak RSS (MiB) | peak tracemalloc '
          '(MiB) | AP50 | mMR | JI |')
    print('|---|---|---:|---:|---:|---:|---:|---:|')
    for r in stress:
        ji = f'{100 * r["JI"]:.2f}' if r['JI'] is not None else '-'
        print(f'| {r["mode"]} | {"yes" if r["ji"] else "no"} | '
              f'{r["seconds"]:.2f} | {r["rss_mib"]:.0f} | '
              f'{r["traced_mib"]:.0f} | {100 * r["AP50"]:.2f} | '
              f'{100 * r["mMR"]:.2f} | {ji} |')
    print(f'\nBlocks give the same sorted TP/FP list as one block: '
          f'{"yes" if stress_same else "NO"}')
    print(f'\n{machine_line()}\n{load_before}; {load_after}')
    if not agree or not stress_same:
        sys.exit(1)
    return results


if __name__ == '__main__':
    main()
