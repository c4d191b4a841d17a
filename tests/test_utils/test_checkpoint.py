import os

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmlla  # noqa: F401  (registers the allow-list)
from mmlla.utils import (check_checkpoint_matches_model, load_checkpoint_file,
                         register_checkpoint_safe_globals)
from mmlla.utils.checkpoint import CheckpointError, UnreadableCheckpointError


def _mmengine_like_checkpoint(model):
    """What mmengine 0.10.7's runner stores besides the weights."""
    hub = MessageHub.get_instance('test_checkpoint')
    for v in (1.0, 0.5, 0.25):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 7)
    hub.update_info('seed', np.int64(42))
    return dict(
        meta=dict(iter=7, seed=np.int64(42), lr=np.float32(0.01),
                  hist=np.arange(3)),
        state_dict=model.state_dict(),
        message_hub=hub.state_dict(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1).state_dict())


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo owned',))


class _GetattrEscape:
    """getattr is allowed only for HistoryBuffer's statistic methods."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return (getattr, (self.obj, self.name))


def test_mmengine_checkpoint_loads_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(_mmengine_like_checkpoint(model), path)
    ckpt = torch.load(path)  # torch >= 2.6: weights_only=True by default
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.min() == 0.25 and buf.max() == 1.0 and buf.current() == 0.25
    assert ckpt['meta']['seed'] == 42
    np.testing.assert_array_equal(ckpt['meta']['hist'], [0, 1, 2])
    assert torch.equal(ckpt['state_dict']['weight'], model.weight)
    assert load_checkpoint_file(path)['meta']['iter'] == 7


@pytest.fixture
def restore_safe_globals():
    """Put torch's process-wide allow-list back exactly as it was."""
    saved = torch.serialization.get_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)


def test_without_the_allow_list_torch_refuses(tmp_path, restore_safe_globals):
    path = str(tmp_path / 'ckpt.pth')
    torch.save(_mmengine_like_checkpoint(torch.nn.Linear(3, 2)), path)
    torch.serialization.clear_safe_globals()
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path)
    register_checkpoint_safe_globals()
    torch.load(path)


@pytest.mark.parametrize('payload,match', [
    (_Evil(), 'system'),
    (_GetattrEscape(HistoryBuffer, '__init__'), 'refusing getattr'),
    (_GetattrEscape(HistoryBuffer, '__class__'), 'refusing getattr'),
    (_GetattrEscape(np.ndarray, 'tofile'), 'refusing getattr'),
])
def test_unexpected_objects_are_refused(tmp_path, payload, match):
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, payload=payload), path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint_file(path)
    with pytest.raises(Exception):
        torch.load(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))
    path = tmp_path / 'corrupt.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # truncated download
    with pytest.raises(UnreadableCheckpointError,
                       match=r'corrupt.pth cannot be read'):
        load_checkpoint_file(str(path))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 1, 1))
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': model.state_dict()}, good)
    check_checkpoint_matches_model(good, model)  # no error

    other = torch.nn.ModuleDict(dict(fc=torch.nn.Linear(3, 4)))
    bad = str(tmp_path / 'other.pth')
    torch.save({'state_dict': other.state_dict()}, bad)
    with pytest.raises(CheckpointError, match='other.pth holds weights of '
                       "another model: 4 of the Sequential model's 4 tensors "
                       'are not in it'):
        check_checkpoint_matches_model(bad, model)

    # a nearly identical model with one more tensor: still refused
    partial = str(tmp_path / 'partial.pth')
    state = model.state_dict()
    state.pop('2.bias')
    torch.save({'state_dict': state, 'extra.weight': torch.zeros(1)}, partial)
    with pytest.raises(CheckpointError, match=r"1 of the Sequential model's 4 "
                       r"tensors are not in it \(e.g. \['2.bias'\]\)"):
        check_checkpoint_matches_model(partial, model)
    # extra tensors (training-only branches) are fine
    state = dict(model.state_dict(), **{'aux.weight': torch.zeros(3)})
    extra = str(tmp_path / 'extra.pth')
    torch.save({'state_dict': state}, extra)
    check_checkpoint_matches_model(extra, model)

    wide = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 1, 1))
    shapes = str(tmp_path / 'wide.pth')
    torch.save({'state_dict': wide.state_dict()}, shapes)
    with pytest.raises(CheckpointError, match=r'3 tensors have other shapes'
                       r', e.g. 0.weight: checkpoint \(8, 3, 3, 3\)'):
        check_checkpoint_matches_model(shapes, model)
