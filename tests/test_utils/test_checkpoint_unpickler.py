"""The restricted unpickler (torch < 2.6 path) and the small checkpoint
helpers, in-process (test_checkpoint_numpy.py runs them in subprocesses).
"""
import io
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmlla.utils.checkpoint as ck
from mmlla.utils import CheckpointError, load_checkpoint_file


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo owned', ))


class _Bytes:
    """Pickles as ``bytes(*args)``."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (bytes, self.args)


@pytest.fixture
def fresh_allow_list(monkeypatch):
    """Make _RestrictedUnpickler build its allow-list again."""
    monkeypatch.setattr(ck._RestrictedUnpickler, '_allowed', {})


def test_allow_list_of_the_restricted_unpickler(fresh_allow_list):
    from torch._weights_only_unpickler import _get_allowed_globals
    allowed = ck._RestrictedUnpickler.allowed()
    assert ck._RestrictedUnpickler.allowed() is allowed  # built once
    assert allowed['mmengine.logging.history_buffer.HistoryBuffer'] is \
        HistoryBuffer
    for name, obj in [('numpy.dtype', ck._checked_dtype),
                      ('numpy.ndarray', ck._NDArrayName),
                      ('builtins.bytes', ck._empty_bytes),
                      ('__builtin__.bytes', ck._empty_bytes),
                      ('builtins.getattr', ck._history_buffer_getattr),
                      ('__builtin__.getattr', ck._history_buffer_getattr),
                      ('numpy.core.multiarray._reconstruct',
                       ck._checked_reconstruct),
                      ('numpy._core.multiarray.scalar', ck._checked_scalar)]:
        assert allowed[name] is obj, name
    torch_globals = _get_allowed_globals()
    assert all(allowed[k] is v for k, v in torch_globals.items())
    assert len(allowed) == len(torch_globals) + len(
        ck._safe_global_entries())


def test_find_class(fresh_allow_list):
    unpickler = ck._RestrictedUnpickler(io.BytesIO(b''))
    assert unpickler.find_class('numpy', 'dtype') is ck._checked_dtype
    assert unpickler.find_class('torch._utils', '_rebuild_tensor_v2') is \
        torch._utils._rebuild_tensor_v2
    with pytest.raises(pickle.UnpicklingError, match=r'^refusing GLOBAL '
                       r'posix\.system: not in the weights-only allow-list$'):
        unpickler.find_class('posix', 'system')


def test_load_through_the_restricted_unpickler(tmp_path, monkeypatch,
                                               fresh_allow_list):
    monkeypatch.setattr(ck, 'TORCH_HAS_NAMED_SAFE_GLOBALS', False)
    hub = MessageHub.get_instance('test_checkpoint_unpickler')
    hub.update_scalar('train/loss', 0.5)
    model = torch.nn.Linear(3, 2)
    path = str(tmp_path / 'ok.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    message_hub=hub.state_dict(),
                    meta=dict(seed=np.int64(3), hist=np.arange(2.0))), path)
    ckpt = load_checkpoint_file(path)
    assert torch.equal(ckpt['state_dict']['weight'], model.weight)
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 0.5
    assert ckpt['meta']['seed'] == 3
    np.testing.assert_array_equal(ckpt['meta']['hist'], [0.0, 1.0])

    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, payload=_Evil()), evil)
    with pytest.raises(CheckpointError, match=(
            f'^checkpoint {evil} holds an object that weights-only loading '
            r'refuses \(.*\): refusing GLOBAL posix\.system: not in the '
            'weights-only allow-list$')):
        load_checkpoint_file(evil)


def test_empty_bytes_only(tmp_path):
    assert ck._empty_bytes() == b''
    with pytest.raises(pickle.UnpicklingError, match=(
            r"^refusing bytes\(b'abc',\) in a weights-only checkpoint: only "
            r'bytes\(\) is allowed$')):
        ck._empty_bytes(b'abc')
    path = str(tmp_path / 'b.pth')
    torch.save(dict(state_dict={}, a=_Bytes(), b=_Bytes([1, 2])), path)
    with pytest.raises(CheckpointError, match=r'refusing bytes\(\[1, 2\],\)'):
        load_checkpoint_file(path)
    torch.save(dict(state_dict={}, a=_Bytes()), path)
    assert load_checkpoint_file(path)['a'] == b''


def test_dtype_refusal_message(tmp_path):
    assert ck._dtype_refusal("'O'") == (
        "refusing numpy dtype 'O' in a weights-only checkpoint: only plain "
        'bool, integer and float dtypes are allowed (object, structured, '
        'string and datetime dtypes are refused)')
    with pytest.raises(pickle.UnpicklingError,
                       match=r"^refusing numpy dtype 'O' in a weights-only "
                       r'checkpoint: only plain bool, integer and float '
                       r'dtypes are allowed \(object, structured, string and '
                       r'datetime dtypes are refused\)$'):
        ck._checked_dtype('O')
    path = str(tmp_path / 'objects.pth')
    torch.save(dict(state_dict={}, a=np.array(['x'], dtype=object)), path)
    with pytest.raises(CheckpointError, match=f'checkpoint {path} .*refusing '
                       "numpy dtype 'O8' in a weights-only checkpoint"):
        load_checkpoint_file(path)


def test_is_local_path(tmp_path):
    assert ck.is_local_path('work_dirs/x/iter_4.pth')
    assert ck.is_local_path(tmp_path / 'missing.pth')  # a Path, too
    assert not ck.is_local_path('https://example.com/iter_4.pth')
    assert not ck.is_local_path('s3://bucket/iter_4.pth')
    (tmp_path / 'odd:').mkdir()
    (tmp_path / 'odd:' / 'c.pth').write_bytes(b'x')
    assert ck.is_local_path(f'{tmp_path}/odd://c.pth')
    assert not ck.is_local_path(f'{tmp_path}/odd://d.pth')
