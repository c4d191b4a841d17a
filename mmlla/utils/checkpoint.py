"""Loading mmengine checkpoints with torch's weights-only protection kept on.

Since torch 2.6, ``torch.load`` only unpickles tensors, containers and an
allow-list of globals. Checkpoints written by mmengine 0.10.7 also hold its
``HistoryBuffer`` (numpy arrays, numpy scalars, and its statistic methods,
which pickle as ``getattr(HistoryBuffer, 'min')``), so ``tools/test.py`` and
``--resume`` fail. Switching weights-only off for everything would let a
checkpoint run arbitrary code; instead :func:`register_checkpoint_safe_globals`
allow-lists exactly what mmengine stores, and ``getattr`` is not allowed as
such: its name is bound to :func:`_history_buffer_getattr`, which resolves
only ``HistoryBuffer``'s registered statistic methods and refuses anything
else. Everything else keeps being refused by torch.
"""
import pickle
from typing import Any, Dict

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

# HistoryBuffer's built-in statistic methods (its class-level registry is only
# filled once a buffer has been created, which may not have happened yet).
HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'current', 'mean'})


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to what mmengine's HistoryBuffer pickles."""
    if obj is HistoryBuffer and (name in HISTORY_BUFFER_METHODS or
                                 name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) in a weights-only checkpoint: '
        'only HistoryBuffer statistic methods are allowed')


def _numpy_globals() -> list:
    """The numpy functions/classes a pickled array or scalar refers to."""
    multiarray = np._core.multiarray if hasattr(
        np, '_core') else np.core.multiarray
    entries = [np.ndarray, np.dtype]
    # numpy 2 writes `numpy._core.multiarray.*`, numpy 1 `numpy.core...`:
    # accept both spellings for the same two functions.
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    # numpy >= 1.25 pickles dtypes of arrays by their class.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        entries += [
            getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')
        ]
    return entries


def register_checkpoint_safe_globals() -> None:
    """Allow-list what mmengine 0.10.x stores in checkpoints (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 has no weights-only default to satisfy
        return
    add([HistoryBuffer, *_numpy_globals(),
         (_history_buffer_getattr, 'builtins.getattr'),
         (_history_buffer_getattr, '__builtin__.getattr')])


def load_checkpoint_file(path: str) -> Dict[str, Any]:
    """``torch.load`` a checkpoint weights-only, with a clear error.

    Raises:
        CheckpointError: The file is missing, corrupt, or holds an object that
            is not allowed; the message names the file.
    """
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint {path} not found') from None
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
        raise CheckpointError(f'checkpoint {path} cannot be read: '
                              f'{type(e).__name__}: {e}') from None


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
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f'checkpoint {path} holds no state_dict')
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
