"""Load result pickles without running code from them.

``pickle.load`` calls whatever callable a file names, so a results file
from elsewhere (``tools/test.py --out``, shared with a paper's numbers) could
run any command. :func:`load_results_pickle` unpickles with an allow-list:

* builtin containers and scalars (``dict``, ``list``, ``tuple``, ``set``,
  ``frozenset``, ``str``, ``bytes``, ``bytearray``, ``int``, ``float``,
  ``complex``, ``bool``, ``None``) and ``collections.OrderedDict``;
* numpy arrays and scalars whose dtype is bool, integer, float or complex
  (object, structured, string and datetime dtypes are refused);
* CPU torch tensors, rebuilt from storages that ``torch.load`` reads with
  ``weights_only=True`` (torch's own pickle of a tensor goes through
  ``torch.storage._load_from_bytes``, which unpickles its bytes without any
  restriction: it is replaced, never called), ``torch.Size`` and the torch
  dtypes.

That is everything mmengine's ``DumpResults`` / mmdet's ``DumpDetResults``
write (a list of dicts of metainfo, tensors and arrays, pickled with protocol
2) and what ``pickle.dump`` of such a list writes with any protocol. Any
other global is refused, before it is called, with an error naming the file
and the global.
"""
import _compat_pickle
import collections
import io
import pickle
import re
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

# numpy dtype kinds an array or scalar may have: bool, signed and unsigned
# integers, floats, complex numbers.
ALLOWED_DTYPE_KINDS = 'biufc'


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle names a global (or holds a value) outside the allow-list."""


def _refuse(what: str) -> UnsafePickleError:
    return UnsafePickleError(
        f'refused {what}: a results pickle may only hold builtin containers '
        'and scalars, numeric numpy arrays and torch tensors')


def _check_np_dtype(dtype: Any, where: str) -> np.dtype:
    if not isinstance(dtype, np.dtype):
        raise _refuse(f'{where} with a dtype of type {type(dtype).__name__}')
    if (dtype.kind not in ALLOWED_DTYPE_KINDS or dtype.fields is not None
            or dtype.subdtype is not None or dtype.hasobject):
        raise _refuse(f'{where} with dtype {dtype.str!r} (only bool, '
                      'integer, float and complex dtypes are allowed)')
    return dtype


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, tuple) and all(
        isinstance(n, int) and not isinstance(n, bool) for n in shape)


# The functions numpy's own pickles name, taken from numpy's reductions so
# that their module (numpy.core or numpy._core) does not matter.
_NP_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NP_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_NP_SCALAR = np.float64(0).__reduce__()[0]


def _np_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """``numpy.dtype('f4', False, True)`` as numpy pickles it, checked."""
    if not isinstance(obj, str):
        raise _refuse(f'global numpy.dtype({obj!r})')
    try:
        dtype = np.dtype(obj, bool(align), bool(copy))
    except TypeError as e:
        raise _refuse(f'global numpy.dtype({obj!r}) ({e})') from None
    return _check_np_dtype(dtype, 'global numpy.dtype')


def _np_reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    """``numpy.core.multiarray._reconstruct`` for plain ndarrays only."""
    if subtype is not np.ndarray or not _is_shape(shape) or not isinstance(
            typecode, bytes):
        raise _refuse(f'global numpy _reconstruct({subtype!r}, ...): only '
                      'numpy.ndarray is allowed')
    return _NP_RECONSTRUCT(subtype, shape, typecode)


def _np_frombuffer(buf: Any, dtype: Any, shape: Any,
                   order: Any) -> np.ndarray:
    """``numpy.core.numeric._frombuffer`` (protocol 5), checked."""
    _check_np_dtype(dtype, 'numpy _frombuffer')
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)) or (
            not _is_shape(shape)) or order not in ('C', 'F'):
        raise _refuse('numpy _frombuffer with unexpected arguments')
    return _NP_FROMBUFFER(buf, dtype, shape, order)


def _np_scalar(dtype: Any, data: Any = None) -> np.generic:
    """``numpy.core.multiarray.scalar`` of a numeric dtype only."""
    _check_np_dtype(dtype, 'global numpy scalar')
    if not isinstance(data, bytes):
        raise _refuse('global numpy scalar with non-bytes data')
    return _NP_SCALAR(dtype, data)


def _codecs_encode(text: Any, encoding: str = 'utf-8') -> bytes:
    """How protocol 2 pickles ``bytes``: ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise _refuse(f'global _codecs.encode with encoding {encoding!r}')
    return text.encode('latin1')


def _storage_from_bytes(data: Any):
    """``torch.storage._load_from_bytes``, through ``weights_only`` load."""
    if not isinstance(data, bytes):
        raise _refuse('global torch.storage._load_from_bytes of non-bytes')
    try:
        storage = torch.load(
            io.BytesIO(data), weights_only=True, map_location='cpu')
    except pickle.UnpicklingError as e:
        # torch names the refused global in its message ("... GLOBAL
        # posix.system ..."): keep that part.
        found = re.search(r'GLOBAL (\S+)', str(e))
        detail = (f'global {found.group(1)}' if found else
                  str(e).strip().splitlines()[0])
        raise _refuse(f'{detail} inside a tensor storage (torch.load with '
                      'weights_only=True refused it)') from None
    if not isinstance(storage, (torch.storage.TypedStorage,
                                torch.UntypedStorage)):
        raise _refuse(f'tensor storage of type {type(storage).__name__}')
    return storage


def _rebuild_tensor_v2(storage: Any,
                       storage_offset: Any,
                       size: Any,
                       stride: Any,
                       requires_grad: Any,
                       backward_hooks: Any,
                       metadata: Any = None) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` of a storage, without hooks."""
    if not isinstance(storage, (torch.storage.TypedStorage,
                                torch.UntypedStorage)):
        raise _refuse('torch tensor rebuilt from a '
                      f'{type(storage).__name__}, not a storage')
    if (not isinstance(storage_offset, int) or not _is_shape(tuple(size))
            or not _is_shape(tuple(stride))
            or not isinstance(requires_grad, bool)):
        raise _refuse('torch tensor with malformed size or stride')
    if backward_hooks:
        raise _refuse('torch tensor with backward hooks')
    if metadata is not None and not isinstance(metadata, dict):
        raise _refuse('torch tensor with non-dict metadata')
    return torch._utils._rebuild_tensor_v2(storage, storage_offset,
                                           tuple(size), tuple(stride),
                                           requires_grad,
                                           collections.OrderedDict(),
                                           metadata)


_ALLOWED: Dict[Tuple[str, str], Any] = {
    ('builtins', 'set'): set,
    ('builtins', 'frozenset'): frozenset,
    ('builtins', 'complex'): complex,
    ('builtins', 'bytearray'): bytearray,
    ('builtins', 'bytes'): bytes,
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('_codecs', 'encode'): _codecs_encode,
    ('numpy', 'dtype'): _np_dtype,
    ('numpy', 'ndarray'): np.ndarray,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch.storage', '_load_from_bytes'): _storage_from_bytes,
    ('torch', 'Size'): torch.Size,
}
for _mod in ('numpy.core', 'numpy._core'):
    _ALLOWED[(f'{_mod}.multiarray', '_reconstruct')] = _np_reconstruct
    _ALLOWED[(f'{_mod}.multiarray', 'scalar')] = _np_scalar
    _ALLOWED[(f'{_mod}.numeric', '_frombuffer')] = _np_frombuffer
# torch.float32 & co. (looked up in the module's namespace: no attribute
# access that could import a submodule).
_TORCH_DTYPES = {
    name: value
    for name, value in vars(torch).items() if isinstance(value, torch.dtype)
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the globals of the allow-list."""

    def find_class(self, module: str, name: str) -> Any:
        # Protocols 0-2 write Python 2 names (__builtin__.set,
        # commands.call): read them as Python 3 does (fix_imports).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        if key[0] == 'torch' and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        raise _refuse(f'global {module}.{name}')

    def persistent_load(self, pid: Any) -> Any:
        raise _refuse(f'persistent id {pid!r}')


_SCALARS = (str, bytes, bytearray, int, float, complex, bool, type(None),
            torch.dtype)
_CONTAINERS = (dict, list, tuple, set, frozenset)


def check_loaded(obj: Any) -> None:
    """Check that an unpickled object holds only allowed values.

    The globals were checked when resolved; this catches values built from
    them in an unexpected way (e.g. an array given an object dtype by its
    state).

    Raises:
        UnsafePickleError: A value of another type or dtype.
    """
    stack, seen = [obj], set()
    while stack:
        x = stack.pop()
        if isinstance(x, _SCALARS):
            continue
        if id(x) in seen:
            continue
        seen.add(id(x))
        if type(x) is np.ndarray or isinstance(x, np.generic):
            _check_np_dtype(x.dtype, 'numpy value')
        elif type(x) is torch.Tensor:
            continue
        elif isinstance(x, dict) and type(x) in (dict,
                                                 collections.OrderedDict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif type(x) in _CONTAINERS or type(x) is torch.Size:
            stack.extend(x)
        else:
            raise _refuse(f'value of type {type(x).__module__}.'
                          f'{type(x).__qualname__}')


def loads_results_pickle(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    Raises:
        UnsafePickleError: A refused global or value.
    """
    obj = RestrictedUnpickler(io.BytesIO(data)).load()
    check_loaded(obj)
    return obj


def load_results_pickle(path: str,
                        backend_args: Optional[dict] = None) -> Any:
    """Load a results pickle (``tools/test.py --out``) without running code.

    Args:
        path: The pickle file (any mmengine file backend).
        backend_args: mmengine file backend arguments.

    Returns:
        The unpickled object.

    Raises:
        UnsafePickleError: The file names a global outside the allow-list
            (module docstring) or holds a refused value; the message names
            the file and the global. Nothing the file names is called.
        ValueError: The file is not a readable pickle.
    """
    from mmengine.fileio import get
    data = get(path, backend_args=backend_args)
    try:
        return loads_results_pickle(data)
    except UnsafePickleError as e:
        raise UnsafePickleError(f'{path}: {e}') from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
            IndexError, KeyError, AttributeError, RuntimeError,
            RecursionError, MemoryError) as e:
        raise ValueError(f'{path}: not a readable results pickle '
                         f'({type(e).__name__}: {e})') from None
