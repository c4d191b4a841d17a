"""mmdet's CrowdHumanMetric against mmlla's CrowdHumanMRMetric.

    python tools/benchmarks/bench_crowdhuman_metric.py [--num-images 4370]
        [--dets-per-img 300] [--gts-per-img 23] [--seed 0]

Generates a seeded synthetic validation-sized set (a ``.odgt`` file of crowds
with ``mask`` ignore regions, and per image ``--dets-per-img`` detections:
jittered duplicates of the people plus low-scoring false positives), feeds
the same predictions to both metrics (``process`` then ``compute_metrics``,
as mmengine's evaluator does), checks that AP50 and mMR agree within 1e-4
and prints a markdown table. The peak Python memory of ours is measured in a
second run under tracemalloc (not timed).
"""
import argparse
import json
import os.path as osp
import platform
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from mmdet.evaluation import CrowdHumanMetric  # noqa: E402

from mmlla.evaluation import CrowdHumanMRMetric  # noqa: E402

IMG_W, IMG_H = (600, 1200), (450, 1000)
# At most this share of the detections are jittered copies of people (one
# per person plus a third of them again: duplicates); the rest are FPs.
TRUE_SHARE = 0.4
IGNORES_PER_IMG = (0, 3)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=4370)
    parser.add_argument('--dets-per-img', type=int, default=300)
    parser.add_argument('--gts-per-img', type=int, default=23)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


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


def run(metric, samples, batch=2):
    start = time.perf_counter()
    for k in range(0, len(samples), batch):
        metric.process(None, samples[k:k + batch])
    out = metric.compute_metrics(metric.results)
    return out, time.perf_counter() - start


def main():
    args = parse_args()
    torch.set_num_threads(1)
    records, samples = make_set(args.num_images, args.dets_per_img,
                                args.gts_per_img, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ann_file = osp.join(tmp, 'annotation_val.odgt')
        with open(ann_file, 'w') as f:
            for r in records:
                f.write(json.dumps(r) + '\n')
        num_people = sum(
            sum(b['tag'] == 'person' for b in r['gtboxes']) for r in records)
        print(f'{len(records)} images, {num_people / len(records):.1f} people '
              f'and {args.dets_per_img} detections per image')

        ours, t_ours = run(CrowdHumanMRMetric(ann_file), samples)
        print(f'mmlla CrowdHumanMRMetric: {t_ours:.2f} s {ours}')
        tracemalloc.start()
        run(CrowdHumanMRMetric(ann_file), samples)
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

        print('mmdet CrowdHumanMetric (AP, MR) ...', flush=True)
        ref, t_ref = run(
            CrowdHumanMetric(ann_file, metric=['AP', 'MR'],
                             num_ji_process=1), samples)
        print(f'mmdet CrowdHumanMetric: {t_ref:.2f} s {dict(ref)}')

    d_ap = abs(ours['AP50'] - ref['mAP'])
    d_mr = abs(ours['mMR'] - ref['mMR'])
    agree = d_ap <= 1e-4 and d_mr <= 1e-4
    print(f'\n|AP50 diff| {d_ap:.2e}, |mMR diff| {d_mr:.2e} -> '
          f'{"agree" if agree else "DISAGREE"} (mmdet rounds to 1e-4)\n')
    print('| images | people/img | dets/img | AP50 | mMR | recall | '
          'mmdet time (s) | ours time (s) | speed-up | ours peak Python '
          'memory (MiB) |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    print(f'| {len(records)} | {num_people / len(records):.1f} | '
          f'{args.dets_per_img} | {100 * ours["AP50"]:.2f} | '
          f'{100 * ours["mMR"]:.2f} | {100 * ours["recall"]:.2f} | '
          f'{t_ref:.1f} | {t_ours:.2f} | {t_ref / t_ours:.0f}x | '
          f'{peak_mib:.0f} |')
    print(f'\n{platform.processor() or platform.machine()}, Python '
          f'{platform.python_version()}, numpy {np.__version__}, torch '
          f'{torch.__version__}')
    if not agree:
        sys.exit(1)


if __name__ == '__main__':
    main()
