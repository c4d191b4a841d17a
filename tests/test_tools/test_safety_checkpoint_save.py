"""A crash or a full disk during a checkpoint save leaves a resumable run.

mmengine's CheckpointHook deletes the oldest checkpoint, then writes the new
one in place: killed mid-write (here with ``max_keep_ckpts=1``) the run has
only a truncated file left. The faults are injected by a launcher written
here, which patches mmengine's file write (or the rename after it) in the
training process and then runs tools/train.py unchanged.
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import data_opts

import mmlla  # noqa: F401
from mmlla.utils import load_checkpoint_file

# FAULT=mid-write: write half of iter_4.pth's bytes, then wait to be killed;
# FAULT=before-rename: wait to be killed when the complete file is renamed;
# FAULT=enospc: write half, then fail with "No space left on device".
LAUNCHER = r'''
import errno, os, os.path as osp, runpy, sys, time
from mmengine.fileio.backends.local_backend import LocalBackend

mode, marker = os.environ['FAULT'], os.environ['FAULT_MARKER']
target = 'iter_4.pth'


def wait_to_be_killed():
    open(marker, 'w').close()
    time.sleep(600)


put = LocalBackend.put


def faulty_put(self, obj, filepath):
    if mode != 'before-rename' and target in os.path.basename(str(filepath)):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            os.fsync(f.fileno())
        if mode == 'enospc':
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filepath)
        wait_to_be_killed()
    return put(self, obj, filepath)


LocalBackend.put = faulty_put
replace = os.replace


def faulty_replace(src, dst, *args, **kwargs):
    if mode == 'before-rename' and osp.basename(str(dst)) == target:
        wait_to_be_killed()
    return replace(src, dst, *args, **kwargs)


os.replace = faulty_replace
sys.argv = ['tools/train.py'] + sys.argv[1:]
runpy.run_path('tools/train.py', run_name='__main__')
'''


def _args(work_dir, root, iters=4):
    """Resume to ``iters``, saving every iteration, keeping one checkpoint."""
    return [
        'configs/fcos/fcos_tiny_synthetic.py', '--work-dir',
        str(work_dir), '--resume', '--cfg-options',
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters + 1}',
        'randomness.seed=0', 'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=1',
        'default_hooks.logger.interval=1', *data_opts(root)
    ]


def _env(**extra):
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore',
                **extra)


@pytest.fixture
def work_dir(trained, tmp_path):
    """A run at iter_3.pth, last_checkpoint pointing at it."""
    dst = tmp_path / 'work'
    shutil.copytree(trained, dst)
    with open(dst / 'last_checkpoint', 'w') as f:
        f.write(str(dst / 'iter_3.pth'))
    return dst


def _resume(repo_root, work_dir, root):
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', *_args(work_dir, root)],
        cwd=repo_root, env=_env(), capture_output=True, text=True,
        timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return log


def _assert_resumable_at_iter_3(work_dir):
    """What a cut-short save of iter_4.pth must leave behind."""
    assert not (work_dir / 'iter_4.pth').exists()
    assert load_checkpoint_file(str(work_dir / 'iter_3.pth'))['meta'][
        'iter'] == 3
    with open(work_dir / 'last_checkpoint') as f:
        assert f.read().strip() == str(work_dir / 'iter_3.pth')


@pytest.mark.parametrize('fault', ['mid-write', 'before-rename'])
def test_killed_during_a_save_the_run_resumes(fault, work_dir, tmp_path,
                                              synthetic_root, repo_root):
    launcher = tmp_path / 'fault_train.py'
    launcher.write_text(LAUNCHER)
    marker = tmp_path / 'saving'
    log_file = open(tmp_path / 'killed.log', 'w')
    proc = subprocess.Popen(
        [sys.executable, str(launcher), *_args(work_dir, synthetic_root)],
        cwd=repo_root, env=_env(FAULT=fault, FAULT_MARKER=str(marker)),
        stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 500
        while not marker.exists() and proc.poll() is None \
                and time.time() < deadline:
            time.sleep(0.2)
        reached = marker.exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # our own session only
        proc.wait()
        log_file.close()
    log = (tmp_path / 'killed.log').read_text()
    assert reached, f'the save of iter_4.pth never reached the fault:\n' \
        f'{log[-3000:]}'

    _assert_resumable_at_iter_3(work_dir)
    log = _resume(repo_root, work_dir, synthetic_root)
    assert 'Auto resumed from the latest checkpoint' in log
    assert 'Iter(train) [4/4]' in log and 'Iter(train) [3/4]' not in log
    assert load_checkpoint_file(str(work_dir / 'iter_4.pth'))['meta'][
        'iter'] == 4
    # the leftover temporary file is gone, iter_3 pruned (max_keep_ckpts=1)
    assert not glob.glob(str(work_dir / '.*.tmp'))
    assert not (work_dir / 'iter_3.pth').exists()


def test_full_disk_during_a_save_fails_and_keeps_the_last_checkpoint(
        work_dir, tmp_path, synthetic_root, repo_root):
    launcher = tmp_path / 'fault_train.py'
    launcher.write_text(LAUNCHER)
    proc = subprocess.run(
        [sys.executable, str(launcher), *_args(work_dir, synthetic_root)],
        cwd=repo_root, env=_env(FAULT='enospc',
                                FAULT_MARKER=str(tmp_path / 'm')),
        capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert 'No space left on device' in log
    assert f'saving checkpoint {work_dir / "iter_4.pth"} failed' in log, \
        log[-3000:]
    assert 'no checkpoint was replaced or removed' in log
    _assert_resumable_at_iter_3(work_dir)
    assert not glob.glob(str(work_dir / '.*.tmp'))


def test_resume_skips_a_truncated_latest_checkpoint(work_dir, synthetic_root,
                                                    repo_root):
    """As mmengine's own hook leaves it: iter_4.pth cut short, named last."""
    data = (work_dir / 'iter_3.pth').read_bytes()
    (work_dir / 'iter_4.pth').write_bytes(data[:len(data) // 3])
    with open(work_dir / 'last_checkpoint', 'w') as f:
        f.write(str(work_dir / 'iter_4.pth'))
    log = _resume(repo_root, work_dir, synthetic_root)
    assert f'checkpoint {work_dir / "iter_4.pth"} cannot be read' in log
    assert f'Auto resumed from {work_dir / "iter_3.pth"}, an older ' \
        'checkpoint' in log, log[-3000:]
    assert 'Iter(train) [4/4]' in log and 'Iter(train) [3/4]' not in log
    assert load_checkpoint_file(str(work_dir / 'iter_4.pth'))['meta'][
        'iter'] == 4
