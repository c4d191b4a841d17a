"""Resume is exact; 1 and 2 processes give the same first-iteration losses."""
import json
import os.path as osp
import sys

import pytest
import torch
from conftest import FCOS_TINY, run, train

DIST_CONFIGS = [
    FCOS_TINY, 'configs/lla/lla_tiny_synthetic.py',
    'configs/poto/poto-3dmf-aux_tiny_synthetic.py'
]


def _free_port():
    """A TCP port nobody listens on now (no fixed port: parallel runs)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _scalars(work_dir):
    """Per-iteration training logs from mmengine's vis_data/scalars.json."""
    import glob
    rows = {}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec:
                    rows[rec['iter']] = rec
    return rows


def test_resume_reaches_the_same_weights_and_losses(tmp_path, synthetic_root,
                                                    repo_root):
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    train(repo_root, synthetic_root, straight, 4)
    train(repo_root, synthetic_root, resumed, 2)
    train(repo_root, synthetic_root, resumed, 4, extra=['--resume'])
    a = torch.load(osp.join(straight, 'iter_4.pth'))['state_dict']
    b = torch.load(osp.join(resumed, 'iter_4.pth'))['state_dict']
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la, lb = _scalars(straight), _scalars(resumed)
    for it in (3, 4):
        assert la[it]['loss'] == lb[it]['loss'], (it, la[it], lb[it])


@pytest.mark.parametrize('config', DIST_CONFIGS)
def test_two_processes_match_one(config, tmp_path, synthetic_root, repo_root):
    outs = {}
    for world in (1, 2):
        out = tmp_path / f'losses_{world}.json'
        run(repo_root, [
            sys.executable, '-m', 'torch.distributed.run',
            f'--nproc_per_node={world}', f'--master_port={_free_port()}',
            'tests/test_tools/dist_loss_probe.py', config, synthetic_root,
            str(out), '4'
        ])
        with open(out) as f:
            outs[world] = json.load(f)
    assert outs[1].keys() == outs[2].keys()
    for name, value in outs[1].items():
        assert outs[2][name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
