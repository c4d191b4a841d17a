"""Loading mmengine checkpoints with torch's weights-only protection kept on.

Since torch 2.6, ``torch.load`` only unpickles tensors, containers and an
allow-list of globals. Checkpoints written by mmengine 0.10.7 also hold its
``HistoryBuffer`` (numpy arrays, numpy scalars, and its statistic methods,
which pickle as ``getattr(HistoryBuffer, 'min')``), so ``tools/test.py`` and
``--resume`` fail. Switching weights-only off for everything would let a
checkpoint run arbitrary code; instead :func:`register_checkpoint_safe_globals`
allow-lists exactly what mmengine stores, and the dangerous globals are not
allowed as such: their names are bound to stand-ins that check their
arguments on every load (the allow-list is process-wide once ``mmlla`` is
imported, so every ``torch.load`` in the process goes through them):

* ``getattr`` -> :func:`_history_buffer_getattr`: only ``HistoryBuffer``'s
  statistic methods.
* ``numpy.dtype`` -> :func:`_checked_dtype`: only the plain bool / integer /
  float dtypes, returned as numpy's built-in singletons. numpy ignores
  ``__setstate__`` on those, so a crafted pickle state (flags that make raw
  bytes be read as object pointers, fields, another byte order) cannot change
  them. Object, structured, string and datetime dtypes are refused.
* ``numpy...._reconstruct`` / ``numpy...scalar``: only the exact calls numpy
  itself pickles, with an allowed dtype.
* ``numpy.ndarray`` -> :class:`_NDArrayName`: a name, usable only as the first
  argument of ``_reconstruct``. The real class may not be reachable from a
  pickle, because ``numpy.ndarray(shape, 'O', buffer)`` builds an object
  array over attacker bytes (a segfault, or worse, when read).

torch's unpickler may only ``BUILD`` (``__setstate__``) instances of
allow-listed types, so ``numpy.ndarray`` and the allowed dtype classes are
allow-listed too, but under names that contain a newline: no ``GLOBAL``
opcode can spell them (module and name are read line by line), so they can
receive ``__setstate__`` but never be called from a checkpoint.
"""
import os.path as osp
import pickle
import re
import types
from typing import Any, Dict, List

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

# HistoryBuffer's built-in statistic methods (its class-level registry is only
# filled once a buffer has been created, which may not have happened yet).
HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'current', 'mean'})

# The dtypes mmengine's checkpoints hold (HistoryBuffer's float64 / int64
# arrays, numpy scalars in meta), as numpy pickles them: `numpy.dtype('f8')`.
ALLOWED_NUMPY_DTYPES = ('b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8',
                        'f2', 'f4', 'f8')


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


class UnreadableCheckpointError(CheckpointError):
    """A checkpoint file that is missing, truncated or corrupt.

    Auto-resume skips such a file (e.g. a save cut short by a crash) in
    favour of an older checkpoint; a refused object (a plain
    :class:`CheckpointError`) is never skipped.
    """


def _refuse(message: str):
    # torch's weights-only unpickler turns UnpicklingError into its own
    # message (kept by load_checkpoint_file); any other exception would read
    # as a corrupt file.
    raise pickle.UnpicklingError(message)


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to what mmengine's HistoryBuffer pickles."""
    if obj is HistoryBuffer and (name in HISTORY_BUFFER_METHODS or
                                 name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    _refuse(f'refusing getattr({obj!r}, {name!r}) in a weights-only '
            'checkpoint: only HistoryBuffer statistic methods are allowed')


def _multiarray():
    return np._core.multiarray if hasattr(np, '_core') else np.core.multiarray


def _dtype_refusal(what: str) -> str:
    return (f'refusing numpy dtype {what} in a weights-only checkpoint: only '
            'plain bool, integer and float dtypes are allowed (object, '
            'structured, string and datetime dtypes are refused)')


def _checked_dtype(spec: Any, align: Any = False, copy: Any = True):
    """``numpy.dtype(spec, align, copy)`` for the allowed plain dtypes only.

    Returns numpy's built-in singleton (never a copy, whatever ``copy``
    says): its ``__setstate__`` is a no-op, so the pickle's BUILD state that
    follows cannot alter flags, fields or byte order.
    """
    if not isinstance(spec, str) or spec not in ALLOWED_NUMPY_DTYPES:
        _refuse(_dtype_refusal(repr(spec)))
    if (type(align) not in (bool, int) or align
            or type(copy) not in (bool, int) or copy not in (0, 1)):
        _refuse(_dtype_refusal(f'{spec!r} with align={align!r}'))
    dtype = np.dtype(spec)
    if dtype is not np.dtype(spec) or dtype.fields is not None:
        _refuse(_dtype_refusal(f'{spec!r} (not a built-in dtype)'))
    return dtype


def _is_allowed_dtype(dtype: Any) -> bool:
    return any(dtype is np.dtype(c) for c in ALLOWED_NUMPY_DTYPES)


class _NDArrayName:
    """What the name ``numpy.ndarray`` means inside a checkpoint.

    Only :func:`_checked_reconstruct` accepts it; it cannot be instantiated
    (torch's NEWOBJ / REDUCE on it fail), unlike ``numpy.ndarray`` itself.
    """

    def __new__(cls, *args, **kwargs):
        _refuse('refusing to call numpy.ndarray in a weights-only '
                'checkpoint: arrays are only rebuilt by numpy\'s '
                '_reconstruct')


def _checked_reconstruct(subtype: Any, shape: Any, typecode: Any):
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``, and nothing else.

    numpy pickles an array as this empty placeholder plus a BUILD state
    ``(version, shape, dtype, fortran, data)``; the dtype in that state can
    only come from :func:`_checked_dtype`.
    """
    if (not (subtype is _NDArrayName or subtype is np.ndarray)
            or type(shape) is not tuple or shape != (0, )
            or type(typecode) not in (bytes, str)
            or typecode not in (b'b', 'b')):
        _refuse(f'refusing numpy _reconstruct({subtype!r}, {shape!r}, '
                f'{typecode!r}) in a weights-only checkpoint: only plain '
                'ndarrays are allowed')
    return _multiarray()._reconstruct(np.ndarray, (0, ), b'b')


def _checked_scalar(dtype: Any, data: Any = None):
    """numpy's ``scalar(dtype, bytes)`` for the allowed dtypes only."""
    if not _is_allowed_dtype(dtype):
        _refuse(_dtype_refusal(f'{dtype!r} (numpy scalar)'))
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        _refuse(f'refusing numpy scalar of {dtype} from {type(data).__name__}'
                ' data of the wrong size in a weights-only checkpoint')
    return _multiarray().scalar(dtype, data)


def _empty_bytes(*args):
    """``bytes()``: how pickle protocol 2 writes the data of an empty array."""
    if args:
        _refuse(f'refusing bytes{args!r} in a weights-only checkpoint: only '
                'bytes() is allowed')
    return b''


def _build_only(cls: type) -> tuple:
    """Allow-list ``cls`` for BUILD, under a name no pickle can refer to."""
    return (cls, f'{cls.__module__}.{cls.__qualname__}\n(mmlla: BUILD only)')


def _numpy_globals() -> List[tuple]:
    """The numpy names a pickled array or scalar refers to, as stand-ins."""
    entries = [(_NDArrayName, 'numpy.ndarray'),
               (_checked_dtype, 'numpy.dtype'),
               _build_only(np.ndarray)]
    # numpy 2 writes `numpy._core.multiarray.*`, numpy 1 `numpy.core...`:
    # accept both spellings for the same two functions.
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        entries.append((_checked_reconstruct, f'{module}._reconstruct'))
        entries.append((_checked_scalar, f'{module}.scalar'))
    # The pickled dtype receives a BUILD: its class (numpy >= 1.25:
    # np.dtypes.Float64DType, ...; before: np.dtype) must be allow-listed.
    for cls in {type(np.dtype(c)) for c in ALLOWED_NUMPY_DTYPES}:
        entries.append(_build_only(cls))
    return entries


def _safe_global_entries() -> list:
    return [HistoryBuffer, *_numpy_globals(),
            (_empty_bytes, 'builtins.bytes'),
            (_empty_bytes, '__builtin__.bytes'),
            (_history_buffer_getattr, 'builtins.getattr'),
            (_history_buffer_getattr, '__builtin__.getattr')]


# --- torch-version guard ----------------------------------------------------
# ``torch.serialization.add_safe_globals`` exists from torch 2.4, and takes
# the ``(object, name)`` pairs used above (the stand-ins) from torch 2.6.
# Before 2.6 (e.g. torch 2.1, the newest with OpenMMLab's prebuilt CUDA
# mmcv 2.1.0) nothing is registered with torch; instead
# :func:`load_checkpoint_file` reads checkpoints through
# :class:`_RestrictedUnpickler`, which resolves a pickle's globals from the
# same allow-list (torch's own weights-only globals plus the entries above),
# so the refusals are the same. What stays unprotected there: a plain
# ``torch.load`` elsewhere in the process (mmengine's ``load_checkpoint`` in
# the inferencer / demo), which torch < 2.6 runs with ``weights_only=False``.
def _torch_version() -> tuple:
    return tuple(int(x) for x in re.findall(r'\d+', torch.__version__)[:2])


TORCH_HAS_NAMED_SAFE_GLOBALS = _torch_version() >= (2, 6)


class _RestrictedUnpickler(pickle.Unpickler):
    """pickle's Unpickler limited to the weights-only allow-list (torch<2.6)."""

    _allowed: Dict[str, Any] = {}

    @classmethod
    def allowed(cls) -> Dict[str, Any]:
        if not cls._allowed:
            from torch._weights_only_unpickler import _get_allowed_globals
            allowed = dict(_get_allowed_globals())
            for entry in _safe_global_entries():
                if isinstance(entry, tuple):
                    allowed[entry[1]] = entry[0]
                else:
                    allowed[f'{entry.__module__}.{entry.__qualname__}'] = entry
            cls._allowed = allowed
        return cls._allowed

    def find_class(self, module: str, name: str) -> Any:
        obj = self.allowed().get(f'{module}.{name}')
        if obj is None:
            _refuse(f'refusing GLOBAL {module}.{name}: not in the '
                    'weights-only allow-list')
        return obj


_restricted_pickle = types.ModuleType('mmlla_restricted_pickle')
_restricted_pickle.Unpickler = _RestrictedUnpickler
_restricted_pickle.UnpicklingError = pickle.UnpicklingError
_restricted_pickle.load = (
    lambda f, **kw: _RestrictedUnpickler(f, **kw).load())
# --- end of the torch-version guard ----------------------------------------


def register_checkpoint_safe_globals() -> None:
    """Allow-list what mmengine 0.10.x stores in checkpoints (idempotent).

    A no-op before torch 2.6 (see the torch-version guard above).
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None or not TORCH_HAS_NAMED_SAFE_GLOBALS:
        return
    add(_safe_global_entries())


# --- a file that is not a checkpoint ------------------------------------------
# torch.save writes a zip archive ('PK'), or, in the legacy format, a pickle
# (protocol >= 2 starts with 0x80). Anything else (a config, an image, a
# text file) would reach torch's unpickler and fail with e.g.
# "Unsupported operand 35".
class NotACheckpointError(UnreadableCheckpointError):
    """A file that is not a PyTorch checkpoint at all."""


def check_is_checkpoint_file(path: str) -> None:
    try:
        with open(path, 'rb') as f:
            head = f.read(8)
    except (FileNotFoundError, NotADirectoryError):
        raise UnreadableCheckpointError(
            f'checkpoint {path} not found') from None
    except IsADirectoryError:
        raise NotACheckpointError(
            f'{path} is a folder, not a checkpoint file (.pth)') from None
    except OSError:
        return  # let torch.load report it
    if not head:
        raise NotACheckpointError(
            f'{path} is empty, not a checkpoint (.pth)')
    if not head.startswith((b'PK', b'\x80')):
        raise NotACheckpointError(
            f'{path} is not a PyTorch checkpoint (a .pth file written by '
            f'training: a zip archive or a pickle); it starts with '
            f'{head[:8]!r}. Was another file given as the checkpoint?')
# ---------------------------------------------------------------------------


def load_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` a checkpoint weights-only, with a clear error.

    Raises:
        UnreadableCheckpointError: The file is missing, truncated or corrupt
            (:class:`NotACheckpointError`: not a checkpoint file at all).
        CheckpointError: It holds an object that is not allowed; the message
            names the file.
    """
    check_is_checkpoint_file(path)
    try:
        if not TORCH_HAS_NAMED_SAFE_GLOBALS:  # torch-version guard
            return torch.load(path, map_location=map_location,
                              weights_only=False,
                              pickle_module=_restricted_pickle)
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UnreadableCheckpointError(
            f'checkpoint {path} not found') from None
    except pickle.UnpicklingError as e:
        # torch's message starts with generic advice; keep the line that
        # names the refused object.
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if 'GLOBAL' in ln or 'refusing' in
                       ln or 'Unsupported' in ln), lines[-1] if lines else '')
        raise CheckpointError(
            f'checkpoint {path} holds an object that weights-only loading '
            f'refuses (only tensors, containers and what mmengine stores are '
            f'allowed): {detail.strip()}') from None
    except Exception as e:  # corrupt zip, truncated file, ...
        raise UnreadableCheckpointError(
            f'checkpoint {path} cannot be read (truncated or corrupt?): '
            f'{type(e).__name__}: {e}') from None


# Keys of a checkpoint's meta that hold config *source*: mmengine's
# Runner.resume runs meta['config'] as Python (Config.fromstring) and its
# inferencers do the same with meta['cfg'] (which every mmengine checkpoint
# holds). A checkpoint must never run code, so these are dropped on load.
CONFIG_META_KEYS = ('config', 'cfg')


def strip_checkpoint_code(checkpoint: Any) -> List[str]:
    """Drop the config source strings from ``checkpoint['meta']`` in place.

    Returns:
        list[str]: The keys removed.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return []
    return [k for k in CONFIG_META_KEYS if meta.pop(k, None) is not None]


def get_state_dict(path: str, checkpoint: Any) -> Dict[str, torch.Tensor]:
    """The checked ``state_dict`` of a loaded checkpoint.

    Raises:
        CheckpointError: No dict of tensors keyed by strings (mmengine would
            fail on such a dict deep inside ``load_state_dict``, or keep
            random weights without saying which file was at fault).
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'checkpoint {path} holds a '
                              f'{type(checkpoint).__name__}, not a dict')
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        raise CheckpointError(f'checkpoint {path} holds no state_dict '
                              f'(a {type(state).__name__})')
    bad_keys = [k for k in state if not isinstance(k, str)]
    if bad_keys:
        raise CheckpointError(
            f'checkpoint {path} has state_dict keys that are not strings: '
            f'{bad_keys[:3]!r}')
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f'checkpoint {path} has state_dict values that are not tensors: '
            + ', '.join(f'{k} ({type(state[k]).__name__})' for k in bad[:3]))
    return state


def check_state_matches_model(path: str, state: Dict[str, Any],
                              model: torch.nn.Module) -> None:
    """Refuse a state dict of another model.

    See :func:`check_checkpoint_matches_model`.
    """
    model = getattr(model, 'module', model)
    own = model.state_dict()
    state = {k[7:] if k.startswith('module.') else k: v
             for k, v in state.items()}
    matched = [k for k in own if k in state]
    mismatched = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(own[k].shape)}' for k in matched
        if hasattr(state[k], 'shape') and state[k].shape != own[k].shape
    ]
    if mismatched:
        raise CheckpointError(
            f'checkpoint {path} does not fit the model '
            f'({type(model).__name__}): {len(mismatched)} tensors have other '
            'shapes, e.g. ' + '; '.join(mismatched[:3]))
    missing = [k for k in own if k not in state]
    if missing:
        raise CheckpointError(
            f'checkpoint {path} holds weights of another model: '
            f'{len(missing)} of the {type(model).__name__} model\'s '
            f'{len(own)} tensors are not in it (e.g. {missing[:3]}), so they '
            'would keep random values')


def check_checkpoint_matches_model(path: str, model: torch.nn.Module) -> None:
    """Refuse a checkpoint that belongs to another model.

    mmengine loads with ``strict=False`` and only logs missing keys, so a
    wrong checkpoint would silently evaluate random weights.

    Raises:
        CheckpointError: Unreadable file, a tensor of another shape, or a
            tensor of the model missing from the checkpoint (extra tensors
            in the checkpoint, e.g. training-only branches, are fine).
    """
    ckpt = load_checkpoint_file(path)
    check_state_matches_model(path, get_state_dict(path, ckpt), model)


def check_resume_checkpoint(path: str, checkpoint: Any,
                            model: torch.nn.Module) -> None:
    """What mmengine's ``Runner.resume`` reads, checked before it reads it.

    mmengine indexes ``meta['epoch']``, ``meta['iter']`` and
    ``message_hub`` directly and loads the weights with ``strict=False``, so
    a checkpoint of another model, or one missing these, would resume with
    random head weights or fail with a bare KeyError.

    Raises:
        CheckpointError: Naming ``path`` and what is wrong.
    """
    state = get_state_dict(path, checkpoint)
    if state is checkpoint or not isinstance(checkpoint.get('meta'), dict):
        raise CheckpointError(
            f'checkpoint {path} cannot be resumed: it has no meta (a weights '
            'file? start a new run from it with load_from instead of '
            '--resume)')
    meta = checkpoint['meta']
    for key in ('epoch', 'iter'):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 0:
            raise CheckpointError(
                f'checkpoint {path} cannot be resumed: meta[{key!r}] is '
                f'{value!r}, not a non-negative integer')
    if not isinstance(checkpoint.get('message_hub'), dict):
        raise CheckpointError(
            f'checkpoint {path} cannot be resumed: it holds no message_hub '
            'state')
    check_state_matches_model(path, state, model)


def is_local_path(filename: str) -> bool:
    """Whether mmengine would read ``filename`` from the local disk."""
    filename = str(filename)
    return '://' not in filename or osp.exists(filename)
