import os
import os.path as osp

import pytest
import torch

# The suite runs on 2 CPU cores: one thread per process keeps subprocess
# tests from oversubscribing them.
torch.set_num_threads(1)
os.environ.setdefault('OMP_NUM_THREADS', '1')

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A tiny synthetic CrowdHuman set (8 train, 4 val images), seed 0."""
    from mmlla.testing import make_synthetic_crowdhuman
    root = str(tmp_path_factory.mktemp('synthetic_crowdhuman'))
    make_synthetic_crowdhuman(root, 8, 4, seed=0, show_progress=False)
    return root + '/'


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


FCOS_TINY = 'configs/fcos/fcos_tiny_synthetic.py'


def data_opts(root):
    """--cfg-options that point a tiny config at the synthetic set."""
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={root}annotation_val.odgt',
        f'test_evaluator.ann_file={root}annotation_val.odgt',
    ]


def run(repo_root, args, **kwargs):
    """Run a command in the repo; fail with its output when it fails."""
    import subprocess
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    env.update(kwargs.pop('env', {}))
    proc = subprocess.run(args, cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def train(repo_root, root, work_dir, iters, config=FCOS_TINY, extra=()):
    """tools/train.py for ``iters`` iterations, seed 0, checkpoint at the end."""
    import sys
    return run(repo_root, [
        sys.executable, 'tools/train.py', config, '--work-dir',
        str(work_dir), *extra, '--cfg-options', f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters + 1}', 'randomness.seed=0',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1', *data_opts(root)
    ])


@pytest.fixture(scope='session')
def trained(tmp_path_factory, synthetic_root, repo_root):
    """A work dir holding iter_3.pth of the tiny FCOS."""
    work_dir = tmp_path_factory.mktemp('fcos_tiny')
    train(repo_root, synthetic_root, work_dir, 3)
    return work_dir
