"""Train a detector: the command line of mmdet's tools/train.py.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr]
        [--resume [CKPT]] [--cfg-options k=v ...] [--launcher pytorch]

Multi-GPU and multi-node training: tools/dist_train.sh.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmlla  # noqa: F401  (registers the project's modules)
from mmlla.utils import (apply_training_safety, protect_runner,
                         setup_launch_env, teardown_distributed)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or, without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value pairs (e.g. '
        'train_cfg.max_iters=100)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _test_tool():
    """tools/test.py as a module (its first-steps helpers)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mmlla_tools_test', osp.join(osp.dirname(osp.abspath(__file__)),
                                     'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    args = parse_args()
    _test_tool().quiet_known_warnings()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: command line > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print('AMP training is already enabled in the config.')
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type '
                f'is `OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if ('auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr
                and 'base_batch_size' in cfg.auto_scale_lr):
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Cannot find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in the config')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # First steps: one line when the data is missing (tools/test.py).
    _test_tool().check_data_exists(
        cfg, ['train_dataloader'] +
        (['val_dataloader'] if cfg.get('val_cfg') else []), args.config)

    # Atomic checkpoint saves and a stop on NaN / inf losses, also for
    # configs that do not inherit configs/_base_/default_runtime.py.
    apply_training_safety(cfg)
    setup_launch_env(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    # mmengine's resume runs a checkpoint's meta['config'] as Python and
    # trusts whatever it loads: checkpoints are read weights-only, without
    # their config source, and checked against the model and optimizer;
    # `--resume` skips a latest checkpoint that cannot be read.
    protect_runner(runner)
    _test_tool().quiet_known_warnings(runner)
    runner.train()


if __name__ == '__main__':
    main()
    # after a successful run only: a failed rank must not wait in a barrier
    teardown_distributed()
