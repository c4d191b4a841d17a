"""apply_training_safety on configs of every shape, and the torch-version
guard of the checkpoint allow-list."""
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook

import mmlla.utils.checkpoint as ck
from mmlla.utils import apply_training_safety, register_checkpoint_safe_globals

ATOMIC = dict(type='AtomicCheckpointHook', interval=1)
STOP = dict(type='NonFiniteLossHook')


def _hooks(cfg):
    cfg = Config(cfg)
    apply_training_safety(cfg)
    return cfg.default_hooks.to_dict()


def test_a_config_without_hooks_gets_both():
    assert _hooks(dict()) == dict(checkpoint=ATOMIC, non_finite_loss=STOP)
    assert _hooks(dict(default_hooks=None)) == dict(checkpoint=ATOMIC,
                                                    non_finite_loss=STOP)
    logger = dict(type='LoggerHook', interval=5)
    assert _hooks(dict(default_hooks=dict(logger=logger))) == dict(
        logger=logger, checkpoint=ATOMIC, non_finite_loss=STOP)


@pytest.mark.parametrize('hook_type,converted', [
    ('CheckpointHook', True), ('mmengine.CheckpointHook', True),
    ('mmdet.CheckpointHook', True), (CheckpointHook, True),
    ('MyCheckpointHook', False), ('CheckpointHook.x', False),
    ('AtomicCheckpointHook', True),
])
def test_checkpoint_hooks_become_atomic(hook_type, converted):
    hooks = _hooks(dict(default_hooks=dict(checkpoint=dict(
        type=hook_type, interval=50, max_keep_ckpts=3))))
    expected = 'AtomicCheckpointHook' if converted else hook_type
    assert hooks['checkpoint'] == dict(type=expected, interval=50,
                                       max_keep_ckpts=3)


@pytest.mark.parametrize('custom,added', [
    ([dict(type='NonFiniteLossHook')], False),
    ([dict(type='mmdet.NonFiniteLossHook', priority='HIGH')], False),
    ([dict(type='EMAHook'), dict(priority=1), 'x'], True),
    (None, True),
])
def test_a_custom_non_finite_loss_hook_is_not_doubled(custom, added):
    hooks = _hooks(dict(custom_hooks=custom))
    assert ('non_finite_loss' in hooks) is added
    assert hooks['checkpoint'] == ATOMIC


@pytest.mark.parametrize('version,expected', [
    ('2.5.1+cu121', (2, 5)), ('2.10.0a0+git', (2, 10)), ('1.13.1', (1, 13)),
])
def test_torch_version(monkeypatch, version, expected):
    monkeypatch.setattr(ck.torch, '__version__', version)
    assert ck._torch_version() == expected


def test_safe_globals_are_registered_only_where_torch_names_them(
        monkeypatch):
    calls = []
    monkeypatch.setattr(torch.serialization, 'add_safe_globals',
                        calls.append)
    register_checkpoint_safe_globals()
    assert calls == [ck._safe_global_entries()]
    monkeypatch.setattr(ck, 'TORCH_HAS_NAMED_SAFE_GLOBALS', False)
    register_checkpoint_safe_globals()
    assert len(calls) == 1
    monkeypatch.setattr(ck, 'TORCH_HAS_NAMED_SAFE_GLOBALS', True)
    monkeypatch.delattr(torch.serialization, 'add_safe_globals')
    register_checkpoint_safe_globals()  # torch < 2.4: nothing to call
    assert len(calls) == 1
