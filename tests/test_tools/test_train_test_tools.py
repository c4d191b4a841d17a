"""tools/train.py, tools/test.py and tools/dist_train.sh, end to end on CPU."""
import os
import os.path as osp
import pickle
import re
import shutil
import subprocess
import sys

import torch
from conftest import FCOS_TINY
from conftest import data_opts as _data_opts
from conftest import run as _run
from conftest import train as _train

LLA_TINY = 'configs/lla/lla_tiny_synthetic.py'


def test_train_writes_checkpoint_weights_only_loadable(trained):
    ckpt = osp.join(trained, 'iter_3.pth')
    assert osp.exists(ckpt)
    # torch >= 2.6 defaults to weights_only=True; import mmlla allow-lists
    # mmengine's objects (HistoryBuffer, numpy) and nothing more.
    import mmlla  # noqa: F401
    state = torch.load(ckpt)
    assert state['meta']['iter'] == 3
    assert 'bbox_head.conv_cls.weight' in state['state_dict']


def test_test_tool_prints_crowdhuman_row(trained, synthetic_root, repo_root,
                                         tmp_path):
    out = tmp_path / 'results.pkl'
    proc = _run(repo_root, [
        sys.executable, 'tools/test.py', FCOS_TINY,
        osp.join(trained, 'iter_3.pth'), '--work-dir',
        str(tmp_path), '--out', str(out), '--show-dir', 'vis',
        '--cfg-options', *_data_opts(synthetic_root)
    ])
    assert '| AP50 | mMR | recall |' in proc.stdout
    row = re.search(r'^\| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$', proc.stdout,
                    re.M)
    assert row is not None, proc.stdout
    ap50, mmr, recall = map(float, row.groups())
    assert 0 <= ap50 <= 100 and 0 <= mmr <= 100 and 0 <= recall <= 100
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 4  # one per validation image
    assert 'pred_instances' in results[0]
    # --show-dir: mmdet's visualizer draws every test image (work_dir/<ts>/vis)
    import glob
    drawn = glob.glob(str(tmp_path / '*' / 'vis' / '*.jpg'))
    assert len(drawn) == 4, drawn


def test_resume_continues_from_the_checkpoint(trained, synthetic_root,
                                              repo_root, tmp_path):
    # a copy: the shared work dir keeps its iter_3.pth for the other tests
    work_dir = tmp_path / 'resumed'
    shutil.copytree(trained, work_dir)
    proc = _train(repo_root, synthetic_root, work_dir, 5, extra=['--resume'])
    log = proc.stdout + proc.stderr
    assert 'resumed' in log.lower()
    assert 'Iter(train) [4/5]' in log and 'Iter(train) [1/5]' not in log
    assert osp.exists(osp.join(work_dir, 'iter_5.pth'))


def test_checkpoint_of_another_model_is_refused(trained, synthetic_root,
                                                repo_root, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, 'tools/test.py', LLA_TINY,
        osp.join(trained, 'iter_3.pth'), '--work-dir',
        str(tmp_path), '--cfg-options', *_data_opts(synthetic_root)
    ], cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'CheckpointError' in proc.stderr
    # the tiny LLA.FCOS and FCOS share all but the IoU / centerness conv
    assert re.search(r'holds weights of another model: 2 of the \w+ model',
                     proc.stderr), proc.stderr[-2000:]


def _free_port():
    """A TCP port nobody listens on now (no fixed port: parallel runs)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(tmp_path, synthetic_root, repo_root):
    work_dir = tmp_path / 'dist'
    # PYTHON: the interpreter running the tests, not whatever is on PATH
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(_free_port()),
               PYTHON=sys.executable)
    proc = subprocess.run([
        'bash', 'tools/dist_train.sh', FCOS_TINY, '2', '--work-dir',
        str(work_dir), '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=3', 'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', *_data_opts(synthetic_root)
    ], cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    # both ranks joined the (gloo) process group and trained
    assert '(rank 0 of 2)' in log and '(rank 1 of 2)' in log
    assert 'Distributed training: True' in log
    assert 'Iter(train) [2/2]' in log
    assert osp.exists(work_dir / 'iter_2.pth')
