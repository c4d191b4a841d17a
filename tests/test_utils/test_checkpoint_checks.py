"""The checks of mmlla.utils.checkpoint, edge by edge: the numpy stand-ins,
the file checks and their messages (each names the file and what is
wrong)."""
import pickle
import re

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from torch import nn

import mmlla.utils.checkpoint as ck
from mmlla.utils import (CheckpointError, UnreadableCheckpointError,
                         check_checkpoint_matches_model,
                         check_resume_checkpoint, load_checkpoint_file)
from mmlla.utils.checkpoint import (NotACheckpointError, get_state_dict,
                                    strip_checkpoint_code)


def _refusal(what):
    return re.escape(ck._dtype_refusal(what))


# --- the numpy stand-ins ---
def test_checked_dtype_allows_the_plain_dtypes_as_singletons():
    for code in ck.ALLOWED_NUMPY_DTYPES:
        assert ck._checked_dtype(code) is np.dtype(code)
        assert ck._checked_dtype(code, False, True) is np.dtype(code)
        assert ck._checked_dtype(code, 0, 0) is np.dtype(code)
        assert ck._checked_dtype(code, align=False, copy=False) is \
            np.dtype(code)


@pytest.mark.parametrize('spec,align,copy,what', [
    ('O', False, True, "'O'"), ('U3', False, True, "'U3'"),
    (b'f8', False, True, "b'f8'"), (np.float64, False, True, None),
    ('f8', True, True, "'f8' with align=True"),
    ('f8', 1, True, "'f8' with align=1"),
    ('f8', 'x', True, "'f8' with align='x'"),
    ('f8', 0.0, True, "'f8' with align=0.0"),
    ('f8', False, 2, "'f8' with align=False"),
    ('f8', False, 'y', "'f8' with align=False"),
    ('f8', False, None, "'f8' with align=False"),
])
def test_checked_dtype_refusals(spec, align, copy, what):
    what = repr(spec) if what is None else what
    with pytest.raises(pickle.UnpicklingError, match=f'^{_refusal(what)}$'):
        ck._checked_dtype(spec, align, copy)


def test_checked_dtype_refuses_dtypes_that_are_not_built_in(monkeypatch):
    """Defence in depth: even if the allow-list named one."""
    monkeypatch.setattr(ck, 'ALLOWED_NUMPY_DTYPES', ('f8', 'U3', 'f8,i4'))
    for spec in ('U3', 'f8,i4'):
        with pytest.raises(pickle.UnpicklingError, match=_refusal(
                f"'{spec}' (not a built-in dtype)")):
            ck._checked_dtype(spec)


def test_is_allowed_dtype():
    assert all(ck._is_allowed_dtype(np.dtype(c))
               for c in ck.ALLOWED_NUMPY_DTYPES)
    for dtype in (np.dtype('O'), np.dtype('U3'), np.dtype('f8,i4'), 'f8',
                  np.dtype('f8').newbyteorder()):
        assert not ck._is_allowed_dtype(dtype)


def test_checked_reconstruct():
    for subtype in (ck._NDArrayName, np.ndarray):
        for typecode in (b'b', 'b'):
            out = ck._checked_reconstruct(subtype, (0, ), typecode)
            assert type(out) is np.ndarray and out.shape == (0, )
            assert out.dtype == np.int8
    for args in [(object, (0, ), b'b'), (np.matrix, (0, ), b'b'),
                 (np.ndarray, (1, ), b'b'), (np.ndarray, [0], b'b'),
                 (np.ndarray, (0, 0), b'b'), (np.ndarray, (0, ), b'x'),
                 (np.ndarray, (0, ), bytearray(b'b')),
                 (np.ndarray, (0, ), 98)]:
        msg = (f'refusing numpy _reconstruct({args[0]!r}, {args[1]!r}, '
               f'{args[2]!r}) in a weights-only checkpoint: only plain '
               'ndarrays are allowed')
        with pytest.raises(pickle.UnpicklingError, match=re.escape(msg)):
            ck._checked_reconstruct(*args)


def test_multiarray_is_numpys_own_module():
    expected = np._core.multiarray if hasattr(np, '_core') else \
        np.core.multiarray
    assert ck._multiarray() is expected


def test_checked_scalar():
    f8 = np.dtype('f8')
    value = ck._checked_scalar(f8, np.float64(2.5).tobytes())
    assert type(value) is np.float64 and value == 2.5
    with pytest.raises(pickle.UnpicklingError, match=_refusal(
            "dtype('O') (numpy scalar)")):
        ck._checked_scalar(np.dtype('O'), b'\0' * 8)
    for data, kind in [(b'abc', 'bytes'), (None, 'NoneType'),
                       ('12345678', 'str')]:
        with pytest.raises(pickle.UnpicklingError, match=(
                f'^refusing numpy scalar of float64 from {kind} data of the '
                'wrong size in a weights-only checkpoint$')):
            ck._checked_scalar(f8, data)


def test_history_buffer_getattr(monkeypatch):
    # the class registry is empty until a buffer is created
    monkeypatch.setattr(HistoryBuffer, '_statistics_methods', {})
    for name in ('min', 'max', 'current', 'mean'):
        assert ck._history_buffer_getattr(HistoryBuffer, name) is \
            getattr(HistoryBuffer, name)
    msg = (f"refusing getattr({HistoryBuffer!r}, '__init__') in a "
           'weights-only checkpoint: only HistoryBuffer statistic methods '
           'are allowed')
    with pytest.raises(pickle.UnpicklingError, match=f'^{re.escape(msg)}$'):
        ck._history_buffer_getattr(HistoryBuffer, '__init__')


# --- files ---
def test_not_a_checkpoint_file(tmp_path):
    folder = tmp_path / 'folder.pth'
    folder.mkdir()
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    config = tmp_path / 'config.py'
    config.write_text('# a config\nmodel = dict()\n')
    for path, msg in [
        (folder, f'{folder} is a folder, not a checkpoint file (.pth)'),
        (empty, f'{empty} is empty, not a checkpoint (.pth)'),
        (config, f"{config} is not a PyTorch checkpoint (a .pth file written "
         "by training: a zip archive or a pickle); it starts with b'# a conf'"
         '. Was another file given as the checkpoint?'),
    ]:
        with pytest.raises(NotACheckpointError, match=f'^{re.escape(msg)}$'):
            load_checkpoint_file(str(path))
    missing = tmp_path / 'missing.pth'
    with pytest.raises(UnreadableCheckpointError,
                       match=f'^checkpoint {missing} not found$'):
        load_checkpoint_file(str(missing))


def test_legacy_pickle_checkpoints_load(tmp_path):
    path = str(tmp_path / 'legacy.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(2))), path,
               _use_new_zipfile_serialization=False)
    assert open(path, 'rb').read(1) == b'\x80'
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'],
                       torch.ones(2))


@pytest.fixture
def torch_load(monkeypatch):
    """torch.load, recorded; ``errors`` makes the next call raise."""
    calls, errors = [], []
    real = torch.load

    def load(*args, **kwargs):
        calls.append((args, kwargs))
        if errors:
            raise errors.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(ck.torch, 'load', load)
    return calls, errors


def test_load_arguments(tmp_path, torch_load, monkeypatch):
    calls, _ = torch_load
    path = str(tmp_path / 'a.pth')
    torch.save(dict(state_dict={}), path)
    assert load_checkpoint_file(path, 'meta') == dict(state_dict={})
    assert calls == [((path, ), dict(map_location='meta', weights_only=True))]
    load_checkpoint_file(path)
    assert calls[-1][1]['map_location'] == 'cpu'
    monkeypatch.setattr(ck, 'TORCH_HAS_NAMED_SAFE_GLOBALS', False)
    assert load_checkpoint_file(path, 'meta') == dict(state_dict={})
    assert calls[-1] == ((path, ), dict(
        map_location='meta', weights_only=False,
        pickle_module=ck._restricted_pickle))


@pytest.mark.parametrize('error,msg', [
    (FileNotFoundError('gone'), 'checkpoint {} not found'),
    (pickle.UnpicklingError('Weights only load failed.\nRe-run with ...\n\n'
                            'WeightsUnpickler error: refusing X\nCheck the '
                            'docs'),
     'checkpoint {} holds an object that weights-only loading refuses (only '
     'tensors, containers and what mmengine stores are allowed): WeightsUnpi'
     'ckler error: refusing X'),
    (pickle.UnpicklingError('advice\n  Unsupported global: GLOBAL a.b  \n'),
     '... allowed): Unsupported global: GLOBAL a.b'),
    (pickle.UnpicklingError('advice\n Unsupported operand 35\nmore\n'),
     '... allowed): Unsupported operand 35'),
    (pickle.UnpicklingError('first\nsecond\n  last  \n\n'),
     '... allowed): last'),
    (pickle.UnpicklingError(''), '... allowed): '),
    (ValueError('bad zip'),
     'checkpoint {} cannot be read (truncated or corrupt?): ValueError: '
     'bad zip'),
])
def test_load_errors_name_the_file(tmp_path, torch_load, error, msg):
    path = str(tmp_path / 'a.pth')
    torch.save(dict(state_dict={}), path)
    torch_load[1].append(error)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(path)
    if msg.startswith('...'):
        msg = ('checkpoint {} holds an object that weights-only loading '
               'refuses (only tensors, containers and what mmengine stores '
               'are allowed)') + msg[len('... allowed)'):]
    assert str(info.value) == msg.format(path)
    unreadable = not isinstance(error, pickle.UnpicklingError)
    assert isinstance(info.value, UnreadableCheckpointError) is unreadable
    assert info.value.__suppress_context__


# --- state dicts and resume checks ---
@pytest.mark.parametrize('ckpt,msg', [
    ([1], 'checkpoint p.pth holds a list, not a dict'),
    (dict(state_dict=[1]), 'checkpoint p.pth holds no state_dict (a list)'),
    ({1: 0, 2: 0, 3: 0, 4: 0},
     'checkpoint p.pth has state_dict keys that are not strings: [1, 2, 3]'),
    (dict(state_dict=dict(a=1, b=[], c='x', d=None)),
     'checkpoint p.pth has state_dict values that are not tensors: a (int), '
     'b (list), c (str)'),
])
def test_state_dict_refusals(ckpt, msg):
    with pytest.raises(CheckpointError, match=f'^{re.escape(msg)}$'):
        get_state_dict('p.pth', ckpt)


def test_strip_checkpoint_code_edges():
    assert strip_checkpoint_code([1]) == []
    assert strip_checkpoint_code(dict(meta='config')) == []
    ckpt = dict(meta=dict(iter=1, config=None))
    assert strip_checkpoint_code(ckpt) == []
    assert ckpt == dict(meta=dict(iter=1))


def _model():
    return nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))


def _resumable(model, **changes):
    ckpt = dict(meta=dict(epoch=0, iter=2), state_dict=model.state_dict(),
                message_hub={})
    ckpt.update(changes)
    return ckpt


@pytest.mark.parametrize('changes,msg', [
    (dict(meta=None), 'checkpoint r.pth cannot be resumed: it has no meta (a '
     'weights file? start a new run from it with load_from instead of '
     '--resume)'),
    (dict(meta=[0]), 'checkpoint r.pth cannot be resumed: it has no meta (a '
     'weights file? start a new run from it with load_from instead of '
     '--resume)'),
    (dict(message_hub=None), 'checkpoint r.pth cannot be resumed: it holds '
     'no message_hub state'),
    (dict(meta=dict(epoch=True, iter=1)), 'checkpoint r.pth cannot be '
     "resumed: meta['epoch'] is True, not a non-negative integer"),
    (dict(meta=dict(epoch=0, iter=-1)), 'checkpoint r.pth cannot be '
     "resumed: meta['iter'] is -1, not a non-negative integer"),
    (dict(meta=dict(epoch=0, iter=2.0)), 'checkpoint r.pth cannot be '
     "resumed: meta['iter'] is 2.0, not a non-negative integer"),
    (dict(state_dict=dict(w=[1.0])), 'checkpoint r.pth has state_dict values '
     'that are not tensors: w (list)'),
])
def test_resume_refusals(changes, msg):
    model = _model()
    ckpt = _resumable(model, **changes)
    if ckpt['meta'] is None:
        del ckpt['meta']
    with pytest.raises(CheckpointError, match=f'^{re.escape(msg)}$'):
        check_resume_checkpoint('r.pth', ckpt, model)


def test_resume_accepts_numpy_integers():
    model = _model()
    check_resume_checkpoint('r.pth', _resumable(model, meta=dict(
        epoch=np.int64(0), iter=np.int32(4))), model)


class _Wrapper(nn.Module):

    def __init__(self, module):
        super().__init__()
        self.module = module


def test_state_of_a_wrapped_or_prefixed_model_fits(tmp_path):
    model = _model()
    plain = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=model.state_dict()), plain)
    check_checkpoint_matches_model(plain, _Wrapper(model))
    prefixed = str(tmp_path / 'prefixed.pth')
    torch.save(dict(state_dict={'module.' + k: v
                                for k, v in model.state_dict().items()}),
               prefixed)
    check_checkpoint_matches_model(prefixed, model)
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=dict(w=[1])), bad)
    with pytest.raises(CheckpointError, match=f'^checkpoint {bad} has '):
        check_checkpoint_matches_model(bad, model)


def test_model_mismatch_messages(tmp_path):
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(3)])
    wide = nn.Sequential(*[nn.Linear(3, 3) for _ in range(3)])
    path = str(tmp_path / 'wide.pth')
    torch.save(dict(state_dict=wide.state_dict()), path)
    msg = (f'checkpoint {path} does not fit the model (Sequential): 6 '
           'tensors have other shapes, e.g. 0.weight: checkpoint (3, 3) vs '
           'model (2, 2); 0.bias: checkpoint (3,) vs model (2,); 1.weight: '
           'checkpoint (3, 3) vs model (2, 2)')
    with pytest.raises(CheckpointError, match=f'^{re.escape(msg)}$'):
        check_checkpoint_matches_model(path, model)
    torch.save(dict(state_dict={'x': torch.zeros(1)}), path)
    msg = (f'checkpoint {path} holds weights of another model: 6 of the '
           "Sequential model's 6 tensors are not in it (e.g. ['0.weight', "
           "'0.bias', '1.weight']), so they would keep random values")
    with pytest.raises(CheckpointError, match=f'^{re.escape(msg)}$'):
        check_checkpoint_matches_model(path, model)
