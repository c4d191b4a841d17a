"""Train several tiny detectors on the same synthetic crowds; compare them.

    python tools/analysis_tools/compare_assigners_synthetic.py \
        [--configs A.py B.py ...] [--iters 1500] [--num-train 600] \
        [--num-val 150] [--seed 0] [--work-dir work_dirs/compare]

Every detector gets the same data, the same number of iterations, the same
seed and the same schedule (the tiny synthetic one, stretched to --iters); the
table printed at the end has AP50 / mMR / recall (percent) and the training
time of each, in markdown. Runs on CUDA when available, else on the CPU.
"""
import argparse
import os.path as osp
import time

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmlla  # noqa: F401
from mmlla.testing import make_synthetic_crowdhuman

# The repository root: the default configs are read from it, wherever the
# tool is run from.
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIGS = [
    'configs/fcos/fcos_tiny_synthetic.py',
    'configs/lla/lla_tiny_synthetic.py',
    'configs/poto/poto-3dmf-aux_tiny_synthetic.py',
]
# Optional, not run by default (pass it with --configs): mmdet's RTMDet-tiny
# with the LLA assigner on its logits.
OPTIONAL_CONFIGS = ['configs/lla/rtmdet-tiny_lla-assigner_tiny_synthetic.py']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    parser.add_argument('--iters', type=int, default=1500)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=150)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-root',
                        default='data/synthetic_crowdhuman_compare/')
    parser.add_argument('--work-dir', default='work_dirs/compare_assigners')
    return parser.parse_args(argv)


def build_cfg(config, args, data_root):
    # a path that is not a file from here is a config of the repository
    cfg = Config.fromfile(config if osp.isfile(config) else osp.join(
        REPO, config))
    name = osp.splitext(osp.basename(config))[0]
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = data_root
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.val_evaluator.ann_file = data_root + 'annotation_val.odgt'
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters + 1
    # the same schedule shape for everybody: warm-up, x0.1 at 80%
    cfg.param_scheduler[-1].end = args.iters
    cfg.param_scheduler[-1].milestones = [int(args.iters * 0.8)]
    cfg.default_hooks.checkpoint.interval = args.iters
    cfg.default_hooks.logger.interval = 50
    return cfg, name


def main(argv=None):
    args = parse_args(argv)
    data_root = args.data_root.rstrip('/') + '/'
    if not osp.exists(data_root + 'annotation_val.odgt'):
        make_synthetic_crowdhuman(data_root, args.num_train, args.num_val,
                                  seed=args.seed)
    device = 'CUDA' if torch.cuda.is_available() else 'CPU'
    rows = []
    for config in args.configs:
        cfg, name = build_cfg(config, args, data_root)
        runner = Runner.from_cfg(cfg)
        start = time.perf_counter()
        runner.train()
        train_s = time.perf_counter() - start
        metrics = runner.test()
        get = {k.rsplit('/', 1)[-1]: v for k, v in metrics.items()}
        rows.append((name, get['AP50'], get['mMR'], get['recall'], train_s))

    lines = [
        f'Synthetic crowds: {args.num_train} train / {args.num_val} val '
        f'images (seed {args.seed}), {args.iters} iterations x batch '
        f'{args.batch_size}, {device}, torch {torch.__version__}', '',
        '| config | AP50 | mMR | recall | train time (s) |',
        '|:--|:--:|:--:|:--:|:--:|'
    ]
    for name, ap, mmr, recall, secs in rows:
        lines.append(f'| {name} | {100 * ap:.1f} | {100 * mmr:.1f} | '
                     f'{100 * recall:.1f} | {secs:.0f} |')
    print('\n'.join(lines))
    return rows


if __name__ == '__main__':
    main()
