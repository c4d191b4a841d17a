"""setup_launch_env and CPUCompatibleDistributedDataParallel, in-process.

tools/dist_train.sh runs them in subprocesses (test_tools); here the
process group calls are faked (setup_launch_env) or a one-process gloo group
is real (the DDP wrapper).
"""
import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from torch import nn

import mmlla.utils.launch as launch
from mmlla.utils import (CPUCompatibleDistributedDataParallel,
                         setup_launch_env, teardown_distributed)

WRAPPER = dict(type='CPUCompatibleDistributedDataParallel',
               broadcast_buffers=False, find_unused_parameters=False)


@pytest.fixture
def fake_dist(monkeypatch):
    """Fake CUDA check, process group and log; records the calls."""
    calls = []
    state = dict(initialized=False, cuda=False)
    monkeypatch.setattr(launch.torch.cuda, 'is_available',
                        lambda: state['cuda'])
    monkeypatch.setattr(launch.torch_dist, 'is_initialized',
                        lambda: state['initialized'])
    monkeypatch.setattr(launch.torch_dist, 'init_process_group',
                        lambda *a, **kw: calls.append(('init', a, kw)))
    monkeypatch.setattr(launch, 'print_log',
                        lambda *a, **kw: calls.append(('log', a, kw)))
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '2')
    return calls, state


def test_a_cpu_pytorch_launch_joins_a_gloo_group(fake_dist):
    calls, _ = fake_dist
    cfg = Config(dict(launcher='pytorch'))
    assert setup_launch_env(cfg) is None
    assert calls == [
        ('log', ('CUDA is not available: joining a gloo process group '
                 '(rank 1 of 2).', ), dict(logger='current')),
        ('init', (), dict(backend='gloo')),
    ]
    assert cfg.model_wrapper_cfg == WRAPPER


def test_an_existing_group_and_wrapper_are_kept(fake_dist):
    calls, state = fake_dist
    state['initialized'] = True
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True))
    setup_launch_env(cfg)
    assert calls == []
    assert cfg.model_wrapper_cfg == dict(WRAPPER, find_unused_parameters=True)
    own = dict(type='MMDistributedDataParallel', broadcast_buffers=True)
    cfg = Config(dict(launcher='pytorch', model_wrapper_cfg=own))
    setup_launch_env(cfg)
    assert cfg.model_wrapper_cfg == own


@pytest.mark.parametrize('cfg,cuda', [
    (dict(), False),
    (dict(launcher='none'), False),
    (dict(launcher='slurm'), False),
    (dict(launcher='pytorch'), True),
])
def test_nothing_to_do_elsewhere(fake_dist, cfg, cuda):
    calls, state = fake_dist
    state['cuda'] = cuda
    cfg = Config(cfg)
    before = cfg.to_dict()
    setup_launch_env(cfg)
    assert calls == [] and cfg.to_dict() == before


@pytest.fixture
def gloo_group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg',
                            rank=0, world_size=1)
    yield
    teardown_distributed()


def test_ddp_wrapper_takes_a_cpu_module(gloo_group):
    module = nn.Linear(2, 1)
    ddp = CPUCompatibleDistributedDataParallel(
        module, device_ids=[0], output_device=0, broadcast_buffers=False,
        find_unused_parameters=True)
    assert ddp.module is module
    assert ddp.device_ids is None and ddp.output_device is None
    assert ddp.broadcast_buffers is False
    assert ddp.find_unused_parameters is True
    x = torch.ones(3, 2)
    assert torch.equal(ddp(x), module(x))
    default = CPUCompatibleDistributedDataParallel(nn.Linear(2, 1))
    assert default.broadcast_buffers is True
    assert default.find_unused_parameters is False


def test_ddp_wrapper_without_parameters_is_torchs_error(gloo_group):
    with pytest.raises(RuntimeError, match="doesn't have any parameter"):
        CPUCompatibleDistributedDataParallel(nn.ReLU(), device_ids=[0])
