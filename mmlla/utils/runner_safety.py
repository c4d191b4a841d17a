"""Safe loading and resuming for the runners of tools/train.py and test.py.

mmengine 0.10.7's ``Runner`` trusts its checkpoints:

* ``Runner.resume`` runs ``meta['config']`` as Python
  (``mmengine.Config.fromstring``, to read ``gpu_ids``), so a checkpoint
  that passes weights-only loading can still run ``os.system(...)``.
* It loads weights with ``strict=False`` and indexes the meta directly: a
  checkpoint of another model resumes with random head weights, a broken one
  fails with a bare KeyError / TypeError that does not name the file.
* Resuming restores the checkpoint's optimizer and scheduler state over the
  config's without a word.
* ``--resume`` without a path trusts ``last_checkpoint``, even when the save
  it names was cut short.

:func:`protect_runner` replaces the runner's ``load_checkpoint``, ``resume``
and ``load_or_resume`` (on the instance, so any ``Runner`` subclass keeps its
other behaviour): checkpoints are read weights-only, their config source is
dropped before mmengine sees it, they are checked (:class:`CheckpointError`
naming the file), changed optimizer settings are reported, and auto-resume
falls back to an older checkpoint when the latest cannot be read.
:func:`apply_training_safety` makes a config save atomically and stop on a
non-finite loss (see :mod:`mmlla.utils.hooks`).
"""
import glob
import math
import os.path as osp
import re
from collections import Counter
from typing import Any, List, Optional

from mmengine.config import Config, ConfigDict
from mmengine.device import get_device
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict, _ParamScheduler
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from .checkpoint import (CheckpointError, UnreadableCheckpointError,
                         check_resume_checkpoint, get_state_dict,
                         is_local_path, load_checkpoint_file,
                         strip_checkpoint_code)

# Optimizer param-group entries that depend on the torch version (or are
# bookkeeping), not on the config.
_OPTIM_VERSION_KEYS = frozenset({
    'foreach', 'fused', 'capturable', 'differentiable', 'maximize',
    'decoupled_weight_decay', 'param_names'
})
# Scheduler state that is progress, not a setting.
_SCHEDULER_RUNTIME_KEYS = frozenset({
    'last_step', '_global_step', 'verbose', '_last_value', 'base_values',
    '_get_value_called_within_step', 'last_epoch', '_step_count', '_last_lr',
    'optimizer'
})
_CKPT_NAME = re.compile(r'(?:iter|epoch)_(\d+)\.pth')


def read_checkpoint(filename: str, map_location: Any = 'cpu',
                    logger=None) -> dict:
    """Load a checkpoint weights-only, checked, with its config source dropped.

    Raises:
        UnreadableCheckpointError: Missing, truncated or corrupt file.
        CheckpointError: Refused objects, or no dict of tensors keyed by
            strings as its state_dict.
    """
    if is_local_path(filename):
        checkpoint = load_checkpoint_file(filename, map_location)
    else:  # URL, open-mmlab://, ...: mmengine downloads and torch.loads it
        try:
            checkpoint = _load_checkpoint(filename, map_location=map_location)
        except Exception as e:
            raise UnreadableCheckpointError(
                f'checkpoint {filename} cannot be read: '
                f'{type(e).__name__}: {e}') from e
    get_state_dict(filename, checkpoint)
    removed = strip_checkpoint_code(checkpoint)
    if 'config' in removed and logger is not None:
        logger.warning(
            f"ignoring meta['config'] of checkpoint {filename}: mmengine "
            'would run it as Python; the config comes from the command line '
            'only')
    return checkpoint


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) or (
            math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


def optimizer_differences(path: str, saved: Any, optimizer) -> List[str]:
    """How the config's optimizer differs from the one in a checkpoint.

    Raises:
        CheckpointError: The saved state cannot be loaded into ``optimizer``
            (other parameter groups: another model or paramwise setting; or
            another optimizer type, whose settings torch would load into
            this one and fail on at the first step).
    """
    groups = saved.get('param_groups') if isinstance(saved, dict) else None
    if (not isinstance(groups, list) or not isinstance(saved.get('state'),
                                                       dict)
            or not all(isinstance(g, dict) and isinstance(
                g.get('params'), list) for g in groups)):
        raise CheckpointError(
            f'checkpoint {path} holds no valid optimizer state')
    current = optimizer.state_dict()['param_groups']
    if len(groups) != len(current):
        raise CheckpointError(
            f'checkpoint {path} does not fit the optimizer: it has '
            f'{len(groups)} parameter groups, the config {len(current)} '
            '(another model, or another paramwise_cfg?)')
    for i, (old, new) in enumerate(zip(groups, current)):
        if len(old['params']) != len(new['params']):
            raise CheckpointError(
                f'checkpoint {path} does not fit the optimizer: parameter '
                f'group {i} has {len(old["params"])} parameters in it, '
                f'{len(new["params"])} in the model')
    changed = Counter()
    for old, new in zip(groups, current):
        keys = (set(old) | set(new)) - {'params'} - _OPTIM_VERSION_KEYS
        only_old = {k for k in keys - set(new) if not k.startswith('initial')}
        only_new = {k for k in keys - set(old) if not k.startswith('initial')}
        if only_old or only_new:
            raise CheckpointError(
                f'checkpoint {path} was written by another optimizer: its '
                f'parameter groups have {sorted(only_old)}, the config\'s '
                f'{type(optimizer).__name__} has {sorted(only_new)}')
        for key in sorted(keys & set(old) & set(new)):
            # scheduled values (lr, momentum, ...) move during training:
            # compare their starting values, `initial_<key>`.
            if f'initial_{key}' in old and f'initial_{key}' in new:
                continue
            if not _same(old[key], new[key]):
                changed[(key, repr(new[key]), repr(old[key]))] += 1
    out = []
    for (key, new, old), count in list(changed.items())[:8]:
        where = '' if len(groups) == 1 else \
            f' (in {count} of {len(groups)} parameter groups)'
        if key.startswith('initial_'):  # written by the param schedulers
            key = f'{key[len("initial_"):]} (before scheduling)'
        out.append(f'optimizer {key}: {new} in the config, {old} in the '
                   f'checkpoint{where}')
    return out


def scheduler_differences(saved: Any, schedulers: list) -> List[str]:
    """How the config's parameter schedulers differ from a checkpoint's."""
    if not isinstance(saved, list):
        return []
    out = []
    if len(saved) != len(schedulers):
        out.append(f'{len(schedulers)} parameter schedulers in the config, '
                   f'{len(saved)} in the checkpoint (mmengine pairs them in '
                   'order)')
    for i, (old, scheduler) in enumerate(zip(saved, schedulers)):
        new = scheduler.state_dict()
        if not isinstance(old, dict):
            continue
        for key in sorted((set(old) & set(new)) - _SCHEDULER_RUNTIME_KEYS):
            if not _same(old[key], new[key]):
                out.append(f'param_scheduler[{i}] '
                           f'({type(scheduler).__name__}) {key}: '
                           f'{new[key]!r} in the config, {old[key]!r} in '
                           'the checkpoint')
    return out


def _warn_about_changed_settings(runner, path: str, checkpoint: dict,
                                 resume_optimizer: bool,
                                 resume_param_scheduler: bool) -> None:
    diffs = []
    wrapper = runner.optim_wrapper
    if (resume_optimizer and 'optimizer' in checkpoint
            and isinstance(wrapper, OptimWrapper)
            and not isinstance(wrapper, OptimWrapperDict)):
        diffs += optimizer_differences(path, checkpoint['optimizer'],
                                       wrapper.optimizer)
    schedulers = runner.param_schedulers
    if (resume_param_scheduler and 'param_schedulers' in checkpoint
            and isinstance(schedulers, list)
            and all(isinstance(s, _ParamScheduler) for s in schedulers)):
        diffs += scheduler_differences(checkpoint['param_schedulers'],
                                       schedulers)
    if diffs:
        runner.logger.warning(
            f'resuming from {path}: the config\'s optimizer / parameter '
            'scheduler settings differ from the checkpoint\'s, and the '
            "checkpoint's values win (--resume restores its optimizer and "
            'scheduler state): ' + '; '.join(diffs) + '. To train with the '
            'new settings, start a new run from these weights (load_from, '
            'without --resume).')


def resume_candidates(work_dir: str) -> List[str]:
    """Checkpoints ``--resume`` may use; ``last_checkpoint``'s one first.

    The others (``iter_N.pth`` / ``epoch_N.pth`` next to it and in
    ``work_dir``, newest first) are fallbacks for a latest checkpoint that
    cannot be read.
    """
    latest: Optional[str] = None
    save_file = osp.join(work_dir, 'last_checkpoint')
    if osp.exists(save_file):
        with open(save_file) as f:
            latest = f.read().strip() or None
    dirs = [work_dir]
    if latest is not None and osp.dirname(latest):
        dirs.append(osp.dirname(latest))
    found = {}
    for d in dirs:
        for path in glob.glob(osp.join(d, '*.pth')):
            m = _CKPT_NAME.fullmatch(osp.basename(path))
            if m:
                found.setdefault(osp.abspath(path), (int(m.group(1)), path))
    others = [p for _, p in sorted(found.values(), reverse=True)]
    if latest is None:
        return others
    return [latest] + [
        p for p in others if osp.abspath(p) != osp.abspath(latest)
    ]


def protect_runner(runner: Runner) -> Runner:
    """Make ``runner`` load, check and resume checkpoints safely (see above).

    Returns:
        The same runner.
    """
    if not isinstance(runner, Runner):
        raise TypeError(
            f'{type(runner).__name__} is not an mmengine Runner: its resume '
            "would run meta['config'] of a checkpoint as Python, which the "
            'mmlla tools do not allow')
    if getattr(runner, '_mmlla_protected', False):
        return runner
    mmengine_resume = runner.resume
    preloaded: dict = {}

    def load_checkpoint(filename,
                        map_location='cpu',
                        strict=False,
                        revise_keys=[(r'^module.', '')]):
        """mmengine's Runner.load_checkpoint, reading via read_checkpoint."""
        if preloaded.get('filename') == filename:
            checkpoint = preloaded.pop('checkpoint')
            preloaded.clear()
        else:
            checkpoint = read_checkpoint(filename, map_location,
                                         runner.logger)
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        checkpoint = _load_checkpoint_to_model(
            model, checkpoint, strict, revise_keys=revise_keys)
        runner._has_loaded = True
        runner.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def resume(filename,
               resume_optimizer=True,
               resume_param_scheduler=True,
               map_location='default'):
        """Check a checkpoint fully, then let mmengine resume from it.

        Everything is checked before mmengine changes any state, so a
        refused checkpoint leaves the runner as it was.
        """
        location = get_device() if map_location == 'default' \
            else map_location
        checkpoint = read_checkpoint(filename, location, runner.logger)
        check_resume_checkpoint(filename, checkpoint, runner.model)
        _warn_about_changed_settings(runner, filename, checkpoint,
                                     resume_optimizer, resume_param_scheduler)
        # mmengine's resume calls runner.load_checkpoint (above), which takes
        # this checked dict, without meta['config'], instead of re-reading.
        preloaded.update(filename=filename, checkpoint=checkpoint)
        try:
            mmengine_resume(filename, resume_optimizer,
                            resume_param_scheduler, map_location)
        finally:
            preloaded.clear()

    def auto_resume():
        candidates = resume_candidates(runner.work_dir)
        if not candidates:
            runner.logger.info(
                f'no checkpoint to resume from in {runner.work_dir}: '
                'training from scratch')
            return
        skipped = []
        for path in candidates:
            try:
                runner.resume(path)
            except UnreadableCheckpointError as e:
                runner.logger.warning(f'{e}; trying an older checkpoint')
                skipped.append(path)
                continue
            if skipped:
                runner.logger.warning(
                    f'Auto resumed from {path}, an older checkpoint: '
                    f'{", ".join(skipped)} could not be read (a save cut '
                    'short?)')
            else:
                runner.logger.info(
                    f'Auto resumed from the latest checkpoint {path}.')
            return
        raise CheckpointError(
            f'--resume: no checkpoint in {runner.work_dir} can be read '
            f'({", ".join(skipped)})')

    def load_or_resume():
        """mmengine's Runner.load_or_resume; auto-resume has fallbacks."""
        if runner._has_loaded:
            return
        if runner._resume and runner._load_from is None:
            auto_resume()
        elif runner._resume:
            runner.resume(runner._load_from)
        elif runner._load_from is not None:
            runner.load_checkpoint(runner._load_from)
        else:
            return
        runner._has_loaded = True

    runner.load_checkpoint = load_checkpoint
    runner.resume = resume
    runner.load_or_resume = load_or_resume
    runner._mmlla_protected = True
    return runner


def _is_type(cfg: Any, name: str, cls: type) -> bool:
    t = cfg.get('type') if isinstance(cfg, dict) else None
    return t is cls or (isinstance(t, str) and t.split('.')[-1] == name)


def apply_training_safety(cfg: Config) -> None:
    """Atomic checkpoints and a stop on non-finite losses, for any config.

    ``configs/_base_/default_runtime.py`` sets both; configs that do not
    inherit it (e.g. the YOLOX one, built on mmdet's runtime) get them here.
    ``default_hooks.checkpoint=None`` / ``default_hooks.non_finite_loss=None``
    still switch them off.
    """
    hooks = cfg.get('default_hooks')
    hooks = ConfigDict() if hooks is None else hooks
    if 'checkpoint' not in hooks:  # mmengine's default: every epoch
        hooks['checkpoint'] = ConfigDict(type='AtomicCheckpointHook',
                                         interval=1)
    elif _is_type(hooks['checkpoint'], 'CheckpointHook', CheckpointHook):
        hooks['checkpoint']['type'] = 'AtomicCheckpointHook'
    custom = cfg.get('custom_hooks') or []
    if 'non_finite_loss' not in hooks and not any(
            isinstance(h, dict) and str(h.get('type', '')).endswith(
                'NonFiniteLossHook') for h in custom):
        hooks['non_finite_loss'] = ConfigDict(type='NonFiniteLossHook')
    cfg.default_hooks = hooks
