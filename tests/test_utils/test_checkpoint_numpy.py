"""The numpy part of the weights-only allow-list admits plain numbers only.

Allow-listing ``numpy.ndarray``, ``numpy.dtype`` and every
``numpy.dtypes.*DType`` let a checkpoint rebuild an object array over its
own bytes (read as pointers: a segfault, or worse). Crafted files are
loaded in a subprocess, so a crash shows as a failed test, not a dead pytest.
"""
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import mmlla  # noqa: F401  (registers the allow-list)
from mmlla.utils import load_checkpoint_file
from mmlla.utils.checkpoint import ALLOWED_NUMPY_DTYPES, CheckpointError

MULTIARRAY = np._core.multiarray if hasattr(np, '_core') else \
    np.core.multiarray

# Load a file, then touch what it holds (as code using it would).
CHILD = r'''
import sys
import mmlla
from mmlla.utils import load_checkpoint_file
from mmlla.utils.checkpoint import CheckpointError
try:
    obj = load_checkpoint_file(sys.argv[1])
except CheckpointError as e:
    print('REFUSED', e)
    sys.exit(0)
print('LOADED', flush=True)
print(repr(obj), flush=True)
sys.exit(3)
'''


class _DType:
    """Pickles as numpy.dtype(code, False, True) with a chosen BUILD state."""

    def __init__(self, code, state):
        self.code, self.state = code, state

    def __reduce__(self):
        return (np.dtype, (self.code, False, True), self.state)


class _Array:
    """Pickles as numpy's _reconstruct(ndarray, ...) with a chosen state."""

    def __init__(self, dtype, shape, data, placeholder=((0, ), b'b')):
        self.state = (1, shape, dtype, False, data)
        self.placeholder = placeholder

    def __reduce__(self):
        return (MULTIARRAY._reconstruct, (np.ndarray, *self.placeholder),
                self.state)


class _CallNDArray:
    """numpy.ndarray(shape, 'O', buffer): an object array over raw bytes."""

    def __reduce__(self):
        return (np.ndarray, ((1, ), 'O', b'\x41' * 8))


class _ObjectScalar:

    def __reduce__(self):
        return (MULTIARRAY.scalar, (_DType('O', (3, '|', None, None, None, -1,
                                                 -1, 63)), b'\x41' * 8))


def _torch_file_with_pickle(path, data_pkl):
    """A torch zip file whose data.pkl is ``data_pkl`` (hand-written)."""
    torch.save({}, path)
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        for info, data in items:
            z.writestr(info, data_pkl
                       if info.filename.endswith('/data.pkl') else data)


# NEWOBJ numpy.ndarray((1,), 'O', b'AAAAAAAA'), which torch.save cannot
# write (the pickler checks the class of __newobj__).
NEWOBJ_NDARRAY = (b'\x80\x02cnumpy\nndarray\nK\x01\x85X\x01\x00\x00\x00O'
                  b'c_codecs\nencode\nX\x08\x00\x00\x00AAAAAAAA'
                  b'X\x06\x00\x00\x00latin1\x86R\x87\x81.')

CLEARED = (3, '|', None, None, None, -1, -1, 0)
CRAFTED = {
    # an object dtype whose flags say "plain bytes": bytes become pointers
    'object_array_cleared_flags':
    _Array(_DType('O', CLEARED), (1, ), b'\x41' * 8),
    'call_ndarray': _CallNDArray(),
    'object_scalar': _ObjectScalar(),
    'huge_object_placeholder':
    _Array(_DType('f8', CLEARED), (0, ), b'', placeholder=((1 << 40, ),
                                                           'O')),
    'structured':
    _Array(_DType('V12', (3, '|', None, ('a', 'b'), {
        'a': (np.dtype('f8'), 0),
        'b': (np.dtype('i4'), 8)
    }, 12, 1, 16)), (1, ), b'\x00' * 12),
    'string': _Array(_DType('U2', (3, '<', None, None, None, 8, 4, 8)), (1, ),
                     b'\x00' * 8),
}


def _load_in_child(path, repo_root):
    return subprocess.run([sys.executable, '-c', CHILD, str(path)],
                          cwd=repo_root, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize('name', [*CRAFTED, 'newobj_ndarray'])
def test_crafted_numpy_objects_are_refused(name, tmp_path, repo_root):
    path = tmp_path / f'{name}.pth'
    if name == 'newobj_ndarray':
        _torch_file_with_pickle(str(path), NEWOBJ_NDARRAY)
    else:
        torch.save({'state_dict': {}, 'meta': {'x': CRAFTED[name]}},
                   str(path))
    proc = _load_in_child(path, repo_root)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f'loading {name} crashed or loaded (rc {proc.returncode}):\n'
        f'{out[-2000:]}')
    assert f'REFUSED checkpoint {path} holds an object' in proc.stdout, out
    assert 'refusing' in proc.stdout, out


def test_crafted_dtype_state_cannot_change_an_allowed_dtype(
        tmp_path, repo_root):
    """Flags saying "holds objects" on a float64: the state is ignored."""
    path = tmp_path / 'flags.pth'
    state = (3, '>', None, None, None, 16, 8, 63)
    torch.save({'x': _Array(_DType('f8', state), (2, ), b'\x41' * 16)},
               str(path))
    code = CHILD.replace(
        "print(repr(obj), flush=True)\nsys.exit(3)",
        "import numpy as np\nx = obj['x']\n"
        "assert x.dtype is np.dtype('f8') and x.dtype.flags == 0\n"
        "assert not x.dtype.hasobject and x.dtype.byteorder == '='\n"
        "print(x.tolist(), np.dtype('f8').flags)")
    proc = subprocess.run([sys.executable, '-c', code, str(path)],
                          cwd=repo_root, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert 'LOADED' in proc.stdout and proc.stdout.strip().endswith(' 0')


@pytest.mark.parametrize('code', ALLOWED_NUMPY_DTYPES)
def test_plain_numeric_arrays_and_scalars_load(code, tmp_path):
    arr = np.arange(6).reshape(2, 3).astype(code)
    path = str(tmp_path / 'ok.pth')
    torch.save({'arr': arr, 'fortran': np.asfortranarray(arr),
                'scalar': arr.dtype.type(1), 'empty': np.array([], code)},
               path)
    out = load_checkpoint_file(path)
    for key in ('arr', 'fortran'):
        assert type(out[key]) is np.ndarray and out[key].dtype == arr.dtype
        np.testing.assert_array_equal(out[key], arr)
    assert out['scalar'] == 1 and out['scalar'].dtype == arr.dtype
    assert out['empty'].shape == (0, )


def test_history_buffer_of_mmengine_loads(tmp_path):
    buf = HistoryBuffer()
    for v in (1.0, 0.5, 0.25):
        buf.update(v)
    path = str(tmp_path / 'hub.pth')
    torch.save({'hub': buf, 'seed': np.int64(3), 'lr': np.float32(0.5)},
               path)
    out = load_checkpoint_file(path)
    assert out['hub'].mean() == pytest.approx(7 / 12)
    assert out['seed'] == 3 and out['lr'] == 0.5


def test_structured_and_object_arrays_are_refused_in_process(tmp_path):
    """The real numpy pickles (not hand-crafted) of refused dtypes."""
    for name, arr in (('structured', np.zeros(2, dtype=[('a', 'f8'),
                                                       ('b', 'i4')])),
                      ('object', np.array([1, 'a'], dtype=object)),
                      ('datetime', np.array(['2024-01-01'],
                                            dtype='datetime64[D]'))):
        path = str(tmp_path / f'{name}.pth')
        torch.save({'meta': {'x': arr}}, path)
        with pytest.raises(CheckpointError,
                           match=rf'{name}.pth holds an object .*refusing '
                           'numpy dtype'):
            load_checkpoint_file(path)


def test_the_real_classes_are_not_reachable_by_name():
    """numpy.ndarray / numpy.dtype names resolve to the checking stand-ins."""
    from torch._weights_only_unpickler import _get_user_allowed_globals
    allowed = _get_user_allowed_globals()
    assert allowed['numpy.ndarray'] is not np.ndarray
    assert allowed['numpy.dtype'] is not np.dtype
    for name, value in allowed.items():
        if value is np.ndarray or isinstance(value, type) and issubclass(
                value, np.dtype):
            assert '\n' in name, name  # BUILD only: no GLOBAL spells it
    assert not any(v is np.dtypes.ObjectDType for v in allowed.values())
    assert not any(v is np.dtypes.VoidDType for v in allowed.values())
