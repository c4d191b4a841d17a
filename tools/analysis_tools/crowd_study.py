"""The CrowdHuman tables in miniature: seven detectors, several seeds, one run.

    python tools/analysis_tools/crowd_study.py [--quick] [--iters 2000] \
        [--seeds 0 1 2] [--jobs 2] [--device cpu|cuda] \
        [--out-dir docs/crowd_study]

Trains FCOS, ATSS, LLA.FCOS, POTO, POTO + 3DMF, POTO + 3DMF + Aux and POTO
with NMS switched on (the tiny synthetic twins of the CrowdHuman rows) on the
same synthetic crowds (the ``crowdhuman`` profile of the generator, whose
statistics are printed beside CrowdHuman's), with the same schedule and
budget, once per seed; then writes into ``--out-dir``:

* ``results.md``: mean and standard deviation over the seeds of AP50, mMR,
  recall and training time per detector, the data statistics, and a verdict
  for each ordering of the papers' CrowdHuman tables (``ORDERINGS``);
* ``results.json``: the per-seed numbers, the arguments and the machine;
* ``mr_fppi.png``: every detector's miss-rate/FPPI curves (every seed).

A seed changes the initialisation and the data order; the data are the same
for every run (``--data-seed``). ``--jobs`` trains that many runs at once in
separate processes (``--threads`` CPU threads each). ``--quick`` is a smoke
run (a few iterations on a handful of tiny images, two seeds) that exercises
every step in about a minute; its numbers mean nothing.
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# name -> (config, cfg overrides); the rows of the CrowdHuman tables
DETECTORS = {
    'FCOS': ('configs/fcos/fcos_tiny_synthetic.py', {}),
    'ATSS': ('configs/atss/atss_tiny_synthetic.py', {}),
    'LLA.FCOS': ('configs/lla/lla_tiny_synthetic.py', {}),
    'POTO': ('configs/poto/poto_tiny_synthetic.py', {}),
    'POTO + 3DMF': ('configs/poto/poto-3dmf_tiny_synthetic.py', {}),
    'POTO + 3DMF + Aux': ('configs/poto/poto-3dmf-aux_tiny_synthetic.py', {}),
    # docs/algorithms.md section 2: the "with NMS" ablation uses
    # class-aware NMS at IoU 0.6, the FCOS/ATSS value
    'POTO + NMS': ('configs/poto/poto_tiny_synthetic.py', {
        'model.test_cfg.nms': dict(
            _delete_=True, type='nms', iou_threshold=0.6)
    }),
}

# A detector that only tests differently from another is evaluated on that
# one's trained weights (same seed) rather than trained again: a paired
# comparison, and one training fewer per seed.
DERIVED = {'POTO + NMS': 'POTO'}

# The CrowdHuman tables (ResNet-50, cvpods; the seed README): AP50, mMR,
# recall in percent. 'POTO + NMS' has no published CrowdHuman row.
REFERENCE = {
    'FCOS': (86.1, 54.9, 94.2),
    'ATSS': (87.2, 49.7, 94.0),
    'LLA.FCOS': (88.2, 47.5, 94.4),
    'POTO': (88.5, 52.2, 96.3),
    'POTO + 3DMF': (88.8, 51.0, 96.6),
    'POTO + 3DMF + Aux': (89.1, 48.9, 96.5),
}

# (better, worse, metric, what the papers show): the orderings to check.
ORDERINGS = [
    ('LLA.FCOS', 'FCOS', 'mMR', 'LLA lowers FCOS\'s miss rate (47.5 vs 54.9)'),
    ('POTO + 3DMF', 'POTO', 'mMR', '3DMF lowers POTO\'s miss rate '
     '(51.0 vs 52.2)'),
    ('POTO + 3DMF + Aux', 'POTO + 3DMF', 'mMR', 'Aux lowers it further '
     '(48.9 vs 51.0)'),
    ('POTO', 'FCOS', 'recall', 'one-to-one recall above FCOS\'s '
     '(96.3 vs 94.2)'),
    ('POTO + 3DMF + Aux', 'FCOS', 'recall', 'one-to-one recall above '
     'FCOS\'s (96.5 vs 94.2)'),
    ('POTO', 'POTO + NMS', 'recall', 'NMS removes overlapping true '
     'detections of a one-to-one detector (DeFCN drops NMS for that)'),
    ('POTO + 3DMF + Aux', 'FCOS', 'mMR', 'the full DeFCN beats FCOS '
     '(48.9 vs 54.9)'),
]
LOWER_IS_BETTER = {'mMR'}
CURVE_POINTS = 200

# CrowdHuman's train set (Shao et al. 2018, Tables 2 and 4 and section 3.2):
# 339,565 persons and 99,227 ignore regions in 15,000 images; pairs of
# person boxes per image above an IoU; "bare" (occlusion <= 30%), "partial"
# (30-70%) and "heavy" (> 70%, the remainder) shares of the persons.
CROWDHUMAN_STATS = {
    'persons per image': 22.64,
    'ignore regions per image': 99227 / 15000,
    'pairs IoU > 0.3 per image': 9.02,
    'pairs IoU > 0.5 per image': 2.40,
    'pairs IoU > 0.7 per image': 0.33,
    'pairs IoU > 0.9 per image': 0.01,
    'bare (visible >= 70%)': 29.89,
    'partial (visible 30-70%)': 32.13,
    'heavy (visible < 30%)': 100 - 29.89 - 32.13,
}


def _pair_ious(boxes: np.ndarray) -> np.ndarray:
    """IoUs of every unordered pair of ``boxes`` (N, 4) x1y1x2y2."""
    x1 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x2 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y2 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area[:, None] + area[None, :] - inter
    iou = inter / np.maximum(union, 1e-12)
    return iou[np.triu_indices(len(boxes), 1)]


def crowd_statistics(ann_file: str) -> Dict[str, float]:
    """The statistics of :data:`CROWDHUMAN_STATS` for an ``.odgt`` file.

    Persons are the ``person`` boxes that are not ``extra.ignore``; ignore
    regions every other box. Pairs use full boxes; the visible ratio is the
    visible box's area over the full box's, CrowdHuman's definition.
    """
    from mmlla.datasets.formats.odgt import read_odgt
    persons, regions, vis = [], [], []
    pairs = {t: 0 for t in (0.3, 0.5, 0.7, 0.9)}
    records = read_odgt(ann_file)
    for rec in records:
        boxes = rec.gtboxes
        people = [
            b for b in boxes if b.get('tag') == 'person'
            and not b.get('extra', {}).get('ignore', 0)
        ]
        persons.append(len(people))
        regions.append(len(boxes) - len(people))
        if not people:
            continue
        full = np.array([b['fbox'] for b in people], np.float64)
        visible = np.array([b['vbox'] for b in people], np.float64)
        vis.extend(visible[:, 2] * visible[:, 3] /
                   np.maximum(full[:, 2] * full[:, 3], 1e-12))
        full[:, 2:] += full[:, :2]
        ious = _pair_ious(full)
        for t in pairs:
            pairs[t] += int((ious > t).sum())
    n = max(len(records), 1)
    vis = np.asarray(vis)
    share = (lambda m: 100.0 * float(m.mean())) if len(vis) else (
        lambda m: 0.0)
    out = {
        'persons per image': sum(persons) / n,
        'ignore regions per image': sum(regions) / n,
    }
    for t, count in pairs.items():
        out[f'pairs IoU > {t} per image'] = count / n
    out['bare (visible >= 70%)'] = share(vis >= 0.7)
    out['partial (visible 30-70%)'] = share((vis >= 0.3) & (vis < 0.7))
    out['heavy (visible < 30%)'] = share(vis < 0.3)
    return out


def statistics_table(stats: Dict[str, float]) -> List[str]:
    lines = ['| statistic | synthetic (crowdhuman profile) | CrowdHuman '
             'train |', '|:--|:--:|:--:|']
    for key, ref in CROWDHUMAN_STATS.items():
        unit = ' %' if key.endswith(')') else ''
        lines.append(f'| {key} | {stats[key]:.2f}{unit} | {ref:.2f}{unit} |')
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--detectors', nargs='+', default=list(DETECTORS),
                        choices=list(DETECTORS), metavar='NAME')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=2000)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=150)
    parser.add_argument('--data-seed', type=int, default=0)
    parser.add_argument('--img-size', type=int, nargs=2, default=(320, 240),
                        metavar=('W', 'H'))
    parser.add_argument('--gen-workers', type=int, default=0,
                        help='processes that draw the data (same output)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once (separate processes)')
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads per run')
    parser.add_argument('--data-root', default=None,
                        help='default: data/crowd_study/ '
                        '(data/crowd_study_quick/ with --quick)')
    parser.add_argument('--work-dir', default=None,
                        help='default: work_dirs/crowd_study[_quick]')
    parser.add_argument('--out-dir', default=None,
                        help='default: docs/crowd_study (with --quick: '
                        'the work dir, so a smoke run never overwrites the '
                        'committed results)')
    parser.add_argument('--machine', default=None,
                        help='how the table names the machine')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 8 iterations, 8/4 tiny images, '
                        'seeds 0 1')
    parser.add_argument('--collect', nargs='+', metavar='JSON',
                        help='write the table from saved runs instead of '
                        'training: results.json files or per-run JSON '
                        'files (a run given twice: the last one counts); '
                        'pass the flags the runs were made with')
    parser.add_argument('--run-one', nargs=2, metavar=('NAME', 'SEED'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.iters, args.num_train, args.num_val = 8, 8, 4
        args.seeds, args.img_size = [0, 1], (160, 120)
        args.batch_size = 2
    suffix = '_quick' if args.quick else ''
    args.data_root = args.data_root or f'data/crowd_study{suffix}/'
    args.work_dir = args.work_dir or f'work_dirs/crowd_study{suffix}'
    args.out_dir = args.out_dir or (args.work_dir if args.quick else
                                    'docs/crowd_study')
    if len(set(args.seeds)) < 2 and not (args.run_one or args.collect):
        parser.error('a standard deviation needs at least two --seeds')
    if args.iters < 1 or args.jobs < 1 or args.threads < 1:
        parser.error('--iters, --jobs and --threads must be >= 1')
    return args


def build_cfg(name: str, seed: int, args, data_root: str):
    from mmengine.config import Config
    config, overrides = DETECTORS[name]
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.merge_from_dict(overrides)
    cfg.work_dir = osp.join(args.work_dir, _slug(name), f'seed{seed}')
    cfg.randomness = dict(seed=seed, deterministic=False)
    width, height = args.img_size
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = data_root
        for step in loader.dataset.pipeline:
            if step['type'] == 'Resize':
                step['scale'] = (width, height)
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.test_evaluator = dict(
        type='CrowdStudyMetric', ann_file=data_root + 'annotation_val.odgt')
    cfg.val_evaluator = cfg.test_evaluator
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters + 1
    # the same schedule shape for everybody: warm-up, x0.1 at 80%
    cfg.param_scheduler[0].end = min(cfg.param_scheduler[0].end,
                                     max(args.iters // 10, 1))
    cfg.param_scheduler[-1].end = args.iters
    cfg.param_scheduler[-1].milestones = [int(args.iters * 0.8)]
    cfg.default_hooks.checkpoint.interval = args.iters
    cfg.default_hooks.logger.interval = 100
    cfg.log_level = 'WARNING'
    return cfg


def _slug(name: str) -> str:
    return name.lower().replace(' + ', '-').replace('.', '-').replace(' ',
                                                                     '')


def _register_metric():
    """A CrowdHuman metric that also keeps its miss-rate/FPPI curve."""
    from mmdet.registry import METRICS

    from mmlla.evaluation import CrowdHumanMRMetric
    from mmlla.evaluation.functional.crowdhuman_mr import (
        Prediction, evaluate_crowdhuman)

    class CrowdStudyMetric(CrowdHumanMRMetric):
        last_curve: Optional[dict] = None

        def compute_metrics(self, results: list) -> Dict[str, float]:
            out = evaluate_crowdhuman(
                self.gts, [Prediction(*r) for r in results],
                iou_thr=self.iou_thr, mr_range=self.mr_range)
            CrowdStudyMetric.last_curve = dict(
                fppi=out['fppi'].tolist(), miss_rate=out['miss_rate'].tolist())
            return super().compute_metrics(results)

    METRICS.register_module(module=CrowdStudyMetric, force=True)
    return CrowdStudyMetric


def run_one(name: str, seed: int, args, data_root: str) -> dict:
    """Train one detector with one seed and evaluate it."""
    import torch
    from mmengine.runner import Runner

    import mmlla  # noqa: F401
    torch.set_num_threads(args.threads)
    metric_cls = _register_metric()
    cfg = build_cfg(name, seed, args, data_root)
    base = DERIVED.get(name)
    if base in args.detectors:
        # test the base detector's weights with this detector's test_cfg
        base_dir = osp.join(args.work_dir, _slug(base), f'seed{seed}')
        with open(osp.join(base_dir, 'last_checkpoint')) as f:
            cfg.load_from = f.read().strip()
        with open(osp.join(args.work_dir,
                           f'{_slug(base)}_seed{seed}.json')) as f:
            train_s = json.load(f)['train_s']
        metrics = Runner.from_cfg(cfg).test()
    else:
        runner = Runner.from_cfg(cfg)
        start = time.perf_counter()
        runner.train()
        train_s = time.perf_counter() - start
        metrics = runner.test()
    get = {k.rsplit('/', 1)[-1]: float(v) for k, v in metrics.items()}
    curve = metric_cls.last_curve or dict(fppi=[], miss_rate=[])
    # keep the curve small: the points where the miss rate changes
    fppi, mr = np.asarray(curve['fppi']), np.asarray(curve['miss_rate'])
    if len(mr) > 1:
        keep = np.r_[True, np.diff(mr) != 0]
        keep[-1] = True
        fppi, mr = fppi[keep], mr[keep]
    fppi, mr = thin_curve(fppi, mr)
    return dict(
        detector=name, seed=seed, AP50=100 * get['AP50'],
        mMR=100 * get['mMR'], recall=100 * get['recall'], train_s=train_s,
        fppi=[round(float(v), 5) for v in fppi],
        miss_rate=[round(float(v), 5) for v in mr])


def thin_curve(fppi: np.ndarray, mr: np.ndarray,
               points: int = CURVE_POINTS) -> tuple:
    """At most about ``points`` points of a step curve, log-spaced in FPPI
    from 1e-3 to 1e2, plus its first and last point (enough to draw it and
    to read the log-average miss rate)."""
    fppi, mr = np.asarray(fppi), np.asarray(mr)
    if len(fppi) <= points:
        return fppi, mr
    idx = np.searchsorted(fppi, np.logspace(-3, 2, points), side='right') - 1
    idx = np.unique(np.r_[0, np.clip(idx, 0, len(fppi) - 1), len(fppi) - 1])
    return fppi[idx], mr[idx]


def _run_all(args, data_root: str) -> List[dict]:
    # derived detectors last: they need their base's weights
    runs = [(name, seed) for name in args.detectors for seed in args.seeds
            if DERIVED.get(name) not in args.detectors]
    runs += [(name, seed) for name in args.detectors for seed in args.seeds
             if DERIVED.get(name) in args.detectors]
    results = []
    os.makedirs(args.work_dir, exist_ok=True)
    if args.jobs == 1:
        for name, seed in runs:
            results.append(run_one(name, seed, args, data_root))
            _save_run(results[-1], args)
            print(_progress(results[-1]), flush=True)
        return results
    env = dict(os.environ)
    if args.device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    env['OMP_NUM_THREADS'] = str(args.threads)
    pending, running = list(runs), []
    base = [sys.executable, osp.abspath(__file__)] + _forwarded(args)
    done = set()
    while pending or running:
        while len(running) < args.jobs:
            ready = [(n, s) for n, s in pending
                     if DERIVED.get(n) not in args.detectors
                     or (DERIVED[n], s) in done]
            if not ready:
                break
            name, seed = ready[0]
            pending.remove((name, seed))
            out = osp.join(args.work_dir, f'{_slug(name)}_seed{seed}.json')
            log = open(out[:-5] + '.log', 'w')
            proc = subprocess.Popen(
                base + ['--run-one', name, str(seed)], env=env, stdout=log,
                stderr=subprocess.STDOUT, cwd=REPO)
            running.append((proc, out, log, name, seed))
        time.sleep(1)
        for item in list(running):
            proc, out, log, name, seed = item
            if proc.poll() is None:
                continue
            log.close()
            running.remove(item)
            if proc.returncode != 0:
                raise RuntimeError(f'{name} seed {seed} failed (exit '
                                   f'{proc.returncode}); see {log.name}')
            with open(out) as f:
                results.append(json.load(f))
            done.add((name, seed))
            print(_progress(results[-1]), flush=True)
    return results


def _save_run(result: dict, args) -> None:
    out = osp.join(args.work_dir,
                   f'{_slug(result["detector"])}_seed{result["seed"]}.json')
    with open(out, 'w') as f:
        json.dump(result, f)


def _forwarded(args) -> List[str]:
    out = ['--iters', str(args.iters), '--detectors', *args.detectors, '--batch-size', str(args.batch_size),
           '--threads', str(args.threads), '--data-root', args.data_root,
           '--work-dir', args.work_dir, '--img-size',
           *map(str, args.img_size), '--device', args.device]
    return out


def _progress(r: dict) -> str:
    return (f'[crowd_study] {r["detector"]} seed {r["seed"]}: AP50 '
            f'{r["AP50"]:.1f} mMR {r["mMR"]:.1f} recall {r["recall"]:.1f} '
            f'({r["train_s"]:.0f} s)')


def summarise(results: Sequence[dict]) -> Dict[str, dict]:
    """Mean and sample standard deviation per detector, in table order."""
    out = {}
    for name in DETECTORS:
        rows = [r for r in results if r['detector'] == name]
        if not rows:
            continue
        entry = {'seeds': [r['seed'] for r in rows]}
        for key in ('AP50', 'mMR', 'recall', 'train_s'):
            values = np.array([r[key] for r in rows], np.float64)
            entry[key] = (float(values.mean()),
                          float(values.std(ddof=1)) if len(values) > 1 else
                          float('nan'))
        out[name] = entry
    return out


def verdict(summary: Dict[str, dict], better: str, worse: str,
            metric: str) -> str:
    """Whether ``better`` beats ``worse`` on ``metric`` beyond the spread.

    The difference of the means must exceed the sum of the two standard
    deviations to count: 'reproduces' in the papers' direction,
    'contradicts' in the other, 'within the spread' otherwise.
    """
    (m_b, s_b), (m_w, s_w) = summary[better][metric], summary[worse][metric]
    gain = (m_w - m_b) if metric in LOWER_IS_BETTER else (m_b - m_w)
    spread = s_b + s_w
    if gain > spread:
        return 'reproduces'
    if -gain > spread:
        return 'contradicts'
    return 'within the spread'


def report(args, results: Sequence[dict], stats: Dict[str, float],
           machine: str) -> List[str]:
    summary = summarise(results)
    seeds = ' '.join(map(str, args.seeds))
    cmd = ('python tools/analysis_tools/crowd_study.py ' +
           ('--quick' if args.quick else
            f'--iters {args.iters} --num-train {args.num_train} '
            f'--num-val {args.num_val} --seeds {seeds}') +
           f' --device {args.device} --jobs {args.jobs}')
    lines = [
        '# Crowd study: the CrowdHuman rows in miniature', '',
        f'Measured on {machine} with', '', '```shell', cmd, '```', '',
        f'{args.num_train} training / {args.num_val} validation synthetic '
        f'images ({args.img_size[0]}x{args.img_size[1]}, crowdhuman profile, '
        f'data seed {args.data_seed}), the same for every run; '
        f'{args.iters} iterations x {args.batch_size} images, AdamW, x0.1 '
        f'at 80%; seeds {seeds} (initialisation and data order). Mean +- '
        'sample standard deviation over the seeds; full-body boxes, IoU '
        '0.5; percent. mMR: lower is better. Reference: the R50 CrowdHuman '
        'tables (cvpods), for the direction of each difference, not its '
        'size.', '',
        '| detector | AP50 | mMR | recall | train time (s) | reference '
        'AP50 / mMR / recall |', '|:--|:--:|:--:|:--:|:--:|:--:|'
    ]
    for name, e in summary.items():
        ref = REFERENCE.get(name)
        ref_txt = ' / '.join(f'{v:.1f}' for v in ref) if ref else '-'
        cells = ' | '.join(f'{e[k][0]:.1f} +- {e[k][1]:.1f}'
                           for k in ('AP50', 'mMR', 'recall'))
        lines.append(f'| {name} | {cells} | {e["train_s"][0]:.0f} | '
                     f'{ref_txt} |')
    lines += ['', '## Orderings of the papers', '',
              '| ordering | metric | here (mean) | papers | verdict |',
              '|:--|:--:|:--:|:--|:--:|']
    for better, worse, metric, paper in ORDERINGS:
        if better not in summary or worse not in summary:
            continue
        mb, mw = summary[better][metric][0], summary[worse][metric][0]
        lines.append(
            f'| {better} vs {worse} | {metric} | {mb:.1f} vs {mw:.1f} | '
            f'{paper} | {verdict(summary, better, worse, metric)} |')
    lines += ['', 'A verdict needs the difference of the means to exceed the '
              'sum of the two standard deviations.', '',
              '## The synthetic crowds beside CrowdHuman', ''
              ] + statistics_table(stats) + [
        '', 'CrowdHuman: Shao et al. 2018, Tables 2 and 4 and section 3.2 '
        '(heavy = 100% - bare - partial). Synthetic: the validation set of '
        'this study.', '', '![MR-FPPI](mr_fppi.png)']
    return lines


def plot(results: Sequence[dict], out_file: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = plt.get_cmap('tab10')
    for i, name in enumerate(DETECTORS):
        rows = [r for r in results if r['detector'] == name]
        for j, r in enumerate(rows):
            fppi, mr = np.asarray(r['fppi']), np.asarray(r['miss_rate'])
            keep = (fppi > 0) & (mr > 0)
            if not keep.any():
                continue
            ax.step(fppi[keep], mr[keep], where='post', color=colors(i),
                    alpha=0.8, linewidth=1.2,
                    label=name if j == 0 else None)
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlim(1e-2, 1e2)
    ax.set_ylim(1e-2, 1.05)  # explicit: a run may have no curve at all
    ax.set_xlabel('false positives per image')
    ax.set_ylabel('miss rate')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    data_root = args.data_root.rstrip('/') + '/'
    if args.run_one:
        name, seed = args.run_one[0], int(args.run_one[1])
        result = run_one(name, seed, args, data_root)
        _save_run(result, args)
        return result
    if args.collect:
        return collect(args)
    import torch

    from mmlla.testing import make_synthetic_crowdhuman
    if not osp.exists(data_root + 'annotation_val.odgt'):
        make_synthetic_crowdhuman(
            data_root, args.num_train, args.num_val, seed=args.data_seed,
            img_size=tuple(args.img_size), show_progress=False,
            profile='crowdhuman', num_workers=args.gen_workers)
    stats = crowd_statistics(data_root + 'annotation_val.odgt')
    print('\n'.join(statistics_table(stats)), flush=True)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is available')
    machine = args.machine or (
        f'{torch.cuda.get_device_name(0)}' if args.device == 'cuda' else
        f'{os.cpu_count()}-core CPU ({platform.machine()})')
    machine += f', torch {torch.__version__}, {args.jobs} run(s) at a time'
    start = time.perf_counter()
    results = _run_all(args, data_root)
    wall = time.perf_counter() - start
    return write_outputs(args, results, stats, machine,
                         f'Whole study: {wall / 60:.1f} min wall time.', wall)


def write_outputs(args, results: Sequence[dict], stats: Dict[str, float],
                  machine: str, note: str,
                  wall: Optional[float] = None) -> dict:
    """Write results.md, results.json and mr_fppi.png into ``--out-dir``."""
    os.makedirs(args.out_dir, exist_ok=True)
    lines = report(args, results, stats, machine)
    lines.insert(-2, note + '\n')
    with open(osp.join(args.out_dir, 'results.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    skip = ('run_one', 'collect')
    raw = dict(args={k: v for k, v in vars(args).items() if k not in skip},
               machine=machine, wall_s=wall, statistics=stats,
               summary=summarise(results), runs=list(results))
    with open(osp.join(args.out_dir, 'results.json'), 'w') as f:
        json.dump(raw, f, indent=1)
    plot(results, osp.join(args.out_dir, 'mr_fppi.png'))
    print('\n'.join(lines))
    return raw


def collect(args) -> dict:
    """The table of runs saved by earlier (possibly interrupted) studies."""
    runs: Dict[tuple, dict] = {}
    stats, machine = None, None
    for path in args.collect:
        with open(path) as f:
            data = json.load(f)
        if 'runs' in data:
            stats = data.get('statistics') or stats
            machine = data.get('machine') or machine
            items = data['runs']
        else:
            items = [data]
        for run in items:
            if run.get('detector') not in DETECTORS:
                raise ValueError(f'{path}: not a crowd-study run')
            runs[(run['detector'], run['seed'])] = run
    if stats is None:
        stats = crowd_statistics(
            args.data_root.rstrip('/') + '/annotation_val.odgt')
    results = list(runs.values())
    args.seeds = sorted({r['seed'] for r in results})
    args.detectors = [n for n in DETECTORS
                      if any(r['detector'] == n for r in results)]
    return write_outputs(
        args, results, stats, args.machine or machine or 'unknown',
        f'Collected from {len(results)} saved runs.')


if __name__ == '__main__':
    main()
