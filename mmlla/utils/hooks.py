"""Training hooks that keep a run resumable and stop a diverging one.

Both are registered in mmdet's HOOKS (our configs' default scope) and used
by ``configs/_base_/default_runtime.py``; ``tools/train.py`` also puts them
into configs that do not inherit it
(:func:`mmlla.utils.apply_training_safety`).
"""
import glob
import math
import os
import os.path as osp
import re
from typing import List, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import EpochBasedTrainLoop

_TMP_SUFFIX = '.tmp'


def _fsync_path(path: str, directory: bool = False) -> None:
    """Flush a file (or a directory entry) to the disk, where supported."""
    try:
        fd = os.open(path, os.O_RDONLY if directory else os.O_RDWR)
    except OSError:  # e.g. directories cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or new file."""
    tmp = osp.join(osp.dirname(path) or '.',
                   f'.{osp.basename(path)}{_TMP_SUFFIX}')
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_path(osp.dirname(path) or '.', directory=True)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose saves survive a crash or a full disk.

    mmengine 0.10.7's hook first deletes the oldest checkpoint (beyond
    ``max_keep_ckpts``), then writes the new file in place and then
    ``last_checkpoint``: a kill or ENOSPC during the write leaves a truncated
    checkpoint, ``last_checkpoint`` naming a file that may already be
    deleted, and with ``max_keep_ckpts=1`` nothing to resume from. Here the
    checkpoint is written to a hidden temporary file in the same directory,
    fsynced and renamed over its final name (atomic on POSIX and Windows),
    then ``last_checkpoint`` is replaced the same way, and only then are old
    checkpoints pruned. A failed save removes the temporary file, keeps every
    old checkpoint and raises. Non-local backends (``out_dir`` on s3, ...)
    keep mmengine's behaviour.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        # A crash mid-save leaves `.iter_N.pth.tmp`: never resumed from
        # (it was not renamed), so remove it.
        if self._is_local() and is_main_process():
            pattern = osp.join(self.out_dir, f'.*{_TMP_SUFFIX}')
            for path in glob.glob(pattern):
                if re.fullmatch(r'\..+\.pth' + re.escape(_TMP_SUFFIX),
                                osp.basename(path)) and osp.isfile(path):
                    runner.logger.warning(
                        f'removing {path}, left by a checkpoint save that '
                        'did not finish')
                    os.remove(path)

    def _is_local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)

        # The same bookkeeping as mmengine's (the message hub, which the
        # checkpoint stores, must already know the new step), except that
        # the outdated checkpoint is only noted here and deleted at the end.
        old_keep = list(getattr(self, 'keep_ckpt_ids', []))
        outdated: List[int] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        final_path = self.file_backend.join_path(self.out_dir, ckpt_filename)
        previous_last = self.last_ckpt
        self.last_ckpt = final_path
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        tmp_filename = f'.{ckpt_filename}{_TMP_SUFFIX}'
        tmp_path = osp.join(self.out_dir, tmp_filename)
        try:
            runner.save_checkpoint(  # writes on the main process only
                self.out_dir,
                tmp_filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if not is_main_process():
                return
            _fsync_path(tmp_path)
            self._commit(runner, tmp_path, final_path)
        except BaseException as e:
            if osp.exists(tmp_path):
                os.remove(tmp_path)
            if self.max_keep_ckpts > 0:
                self.keep_ckpt_ids.clear()
                self.keep_ckpt_ids.extend(old_keep)
                runner.message_hub.update_info('keep_ckpt_ids', old_keep)
            self.last_ckpt = previous_last
            if previous_last is not None:
                runner.message_hub.update_info('last_ckpt', previous_last)
            if isinstance(e, Exception):
                raise RuntimeError(
                    f'saving checkpoint {final_path} failed '
                    f'({type(e).__name__}: {e}); no checkpoint was replaced '
                    'or removed, `--resume` continues from the last one '
                    'saved') from e
            raise

        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'),
                          self.last_ckpt)
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints
                self.file_backend.rmtree(path)

    def _commit(self, runner, tmp_path: str, final_path: str) -> None:
        """Publish a complete checkpoint under its final name (atomically)."""
        os.replace(tmp_path, final_path)
        _fsync_path(osp.dirname(final_path), directory=True)


class NonFiniteLossError(RuntimeError):
    """Training diverged: a loss is NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first non-finite loss, before anything is saved.

    mmengine logs a NaN loss and carries on: the run validates NaN weights,
    saves them as checkpoints and exits 0. This hook checks the log
    variables of every training iteration (the ``loss*`` terms that
    ``train_step`` returns) and raises :class:`NonFiniteLossError` naming the
    iteration and the terms. Its priority runs it before the logger and the
    checkpoint hook of the same iteration, so no checkpoint of the diverged
    iteration is written. With several processes the check is all-reduced,
    so that every rank stops at the same iteration (one rank raising alone
    would leave the others waiting in a collective).
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        bad = {}
        if isinstance(outputs, dict):
            for name, value in outputs.items():
                if 'loss' not in name:
                    continue
                if isinstance(value, torch.Tensor):
                    value = value.detach().float()
                    if value.numel() == 0 or torch.isfinite(value).all():
                        continue
                    bad[name] = value.mean().item()
                elif isinstance(value, (int, float)):
                    if not math.isfinite(value):
                        bad[name] = value
        any_bad = bool(bad)
        if get_world_size() > 1:
            flag = torch.tensor([float(any_bad)])
            all_reduce(flag)
            any_bad = flag.item() > 0
        if not any_bad:
            return
        # 1-based, as mmengine logs it and names the checkpoint (iter_N.pth)
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where += f' (epoch {runner.epoch + 1})'
        if bad:
            terms = ', '.join(f'{k}={v}' for k, v in bad.items())
            msg = f'non-finite loss at {where}: {terms}'
        else:
            msg = (f'non-finite loss on another process at {where}')
        msg += ('. Training stops here; no checkpoint of this iteration was '
                'saved (lower the learning rate, or check the data and the '
                'loss weights).')
        runner.logger.error(msg)
        raise NonFiniteLossError(msg)
