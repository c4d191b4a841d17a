"""A diverging run stops at the first non-finite loss, saving nothing of it.

mmengine logs NaN losses and trains on: the tiny FCOS / ATSS at an absurd
learning rate used to reach NaN, validate and exit 0 with NaN checkpoints.
"""
import os
import re
import subprocess
import sys

from conftest import FCOS_TINY, data_opts

import mmlla  # noqa: F401
from mmlla.utils import load_checkpoint_file


def test_non_finite_loss_stops_training(tmp_path, synthetic_root, repo_root):
    work_dir = tmp_path / 'diverging'
    proc = subprocess.run([
        sys.executable, 'tools/train.py', FCOS_TINY, '--work-dir',
        str(work_dir), '--cfg-options', 'train_cfg.max_iters=6',
        'train_cfg.val_interval=7', 'randomness.seed=0',
        'optim_wrapper.optimizer.lr=1e8',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1', *data_opts(synthetic_root)
    ], cwd=repo_root, env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert 'NonFiniteLossError' in proc.stderr, log[-3000:]
    found = re.search(r'non-finite loss at iteration (\d+): (loss\w*=\S+)',
                      proc.stderr)
    assert found, proc.stderr[-3000:]
    it = int(found.group(1))
    assert 1 <= it <= 6 and re.search(r'=(nan|inf|-inf)', found.group(2))
    # nothing of the diverged iteration was saved, nor validated after it
    assert not (work_dir / f'iter_{it}.pth').exists()
    assert f'Iter(train) [{it}/6]' not in log
    assert 'Iter(val)' not in log
    for k in range(1, it):  # the iterations before it were finite
        ckpt = load_checkpoint_file(str(work_dir / f'iter_{k}.pth'))
        assert all(v.isfinite().all() for v in ckpt['state_dict'].values()
                   if v.is_floating_point())
