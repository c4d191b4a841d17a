"""AtomicCheckpointHook in-process: what a save writes, and a failed one.

The tools tests (test_tools/test_safety_checkpoint_save.py) kill real
training runs; here the hook of a tiny Runner (toy_runner.py) saves
directly, with the failures injected into ``runner.save_checkpoint`` and
``os.replace``.
"""
import os
from collections import deque

import pytest
from mmengine.hooks import CheckpointHook
from toy_runner import make_runner, record_logs

import mmlla.utils.hooks as hooks_module
from mmlla.utils import AtomicCheckpointHook, load_checkpoint_file


def _trained(tmp_path, max_keep_ckpts=2, max_iters=3, **kwargs):
    """A runner after ``max_iters`` iterations, saving every iteration."""
    hook = AtomicCheckpointHook(interval=1, by_epoch=False,
                                max_keep_ckpts=max_keep_ckpts, **kwargs)
    runner = make_runner(tmp_path / 'work', hooks=dict(checkpoint=hook),
                         max_iters=max_iters)
    runner.train()
    return runner, hook


def _files(work):
    return sorted(p for p in os.listdir(work)
                  if p.endswith(('.pth', '.tmp', 'last_checkpoint')))


def _ours(work):
    # not the log folder and config dump that the runner writes there
    return sorted(p for p in os.listdir(work) if 'pth' in p or 'tmp' in p)


def _state(runner, hook):
    hub = runner.message_hub
    return (list(getattr(hook, 'keep_ckpt_ids', [])), hook.last_ckpt,
            hub.get_info('keep_ckpt_ids'), hub.get_info('last_ckpt'))


def test_saves_prune_after_the_new_checkpoint(tmp_path):
    runner, hook = _trained(tmp_path)
    work = tmp_path / 'work'
    assert _files(work) == ['iter_2.pth', 'iter_3.pth', 'last_checkpoint']
    last = str(work / 'iter_3.pth')
    assert (work / 'last_checkpoint').read_text() == last
    assert _state(runner, hook) == ([2, 3], last, [2, 3], last)
    # the checkpoint itself holds the bookkeeping of its own save
    ckpt = load_checkpoint_file(last)
    assert ckpt['meta']['iter'] == 3
    assert ckpt['message_hub']['runtime_info']['keep_ckpt_ids'] == [2, 3]
    assert ckpt['message_hub']['runtime_info']['last_ckpt'] == last
    assert 'optimizer' in ckpt and 'param_schedulers' in ckpt

    # saving the same step again keeps one id for it and prunes nothing
    hook._save_checkpoint_with_step(runner, 3, dict(iter=3))
    assert _state(runner, hook) == ([2, 3], last, [2, 3], last)
    assert _files(work) == ['iter_2.pth', 'iter_3.pth', 'last_checkpoint']
    hook._save_checkpoint_with_step(runner, 4, dict(iter=4))
    last = str(work / 'iter_4.pth')
    assert _files(work) == ['iter_3.pth', 'iter_4.pth', 'last_checkpoint']
    assert _state(runner, hook) == ([3, 4], last, [3, 4], last)
    assert (work / 'last_checkpoint').read_text() == last
    assert load_checkpoint_file(last)['meta']['iter'] == 4


def test_keep_everything_and_save_options(tmp_path):
    runner, hook = _trained(tmp_path, max_keep_ckpts=-1, save_optimizer=False,
                            save_param_scheduler=False)
    work = tmp_path / 'work'
    assert _files(work) == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth',
                            'last_checkpoint']
    assert runner.message_hub.get_info('keep_ckpt_ids') is None
    ckpt = load_checkpoint_file(str(work / 'iter_3.pth'))
    assert 'optimizer' not in ckpt and 'param_schedulers' not in ckpt
    assert ckpt['meta']['iter'] == 3


def test_save_arguments_reach_the_runner(tmp_path, monkeypatch):
    runner, hook = _trained(tmp_path, max_iters=1)
    calls = []
    monkeypatch.setattr(runner, 'save_checkpoint',
                        lambda *a, **kw: calls.append((a, kw)) or open(
                            os.path.join(a[0], a[1]), 'wb').close())
    meta = dict(iter=5)
    hook._save_checkpoint_with_step(runner, 5, meta)
    work = str(tmp_path / 'work')
    assert calls == [((work, '.iter_5.pth.tmp', None),
                      dict(save_optimizer=True, save_param_scheduler=True,
                           meta=meta, by_epoch=False, backend_args=None))]
    assert os.path.isfile(os.path.join(work, 'iter_5.pth'))


class _DiskFull(OSError):
    pass


def _failing_save(runner, tmp_path, error):
    """runner.save_checkpoint writes half a file, then fails."""

    def save(out_dir, filename, *args, **kwargs):
        with open(os.path.join(out_dir, filename), 'wb') as f:
            f.write(b'PK half a checkpoint')
        raise error

    runner.save_checkpoint = save


@pytest.mark.parametrize('where', ['save', 'commit'])
def test_a_failed_save_replaces_and_removes_nothing(tmp_path, monkeypatch,
                                                    where):
    runner, hook = _trained(tmp_path)
    work = tmp_path / 'work'
    before = {p: (work / p).read_bytes() for p in _files(work)}
    state = _state(runner, hook)
    if where == 'save':
        _failing_save(runner, tmp_path, _DiskFull(28, 'No space left'))
        cause = r'_DiskFull: \[Errno 28\] No space left'
    else:
        def replace(src, dst):
            raise PermissionError('read-only')
        monkeypatch.setattr(hooks_module.os, 'replace', replace)
        cause = 'PermissionError: read-only'
    final = str(work / 'iter_4.pth')
    with pytest.raises(RuntimeError, match=(
            f'^saving checkpoint {final} failed \\({cause}\\); no checkpoint '
            'was replaced or removed, `--resume` continues from the last '
            'one saved$')) as info:
        hook._save_checkpoint_with_step(runner, 4, dict(iter=4))
    assert isinstance(info.value.__cause__, OSError)
    assert {p: (work / p).read_bytes() for p in _files(work)} == before
    assert _state(runner, hook) == state
    assert isinstance(hook.keep_ckpt_ids, deque)


def test_an_interrupted_save_is_re_raised_as_it_is(tmp_path):
    runner, hook = _trained(tmp_path, max_keep_ckpts=1, max_iters=2)
    work = tmp_path / 'work'
    before = {p: (work / p).read_bytes() for p in _files(work)}
    assert list(before) == ['iter_2.pth', 'last_checkpoint']
    state = _state(runner, hook)
    _failing_save(runner, tmp_path, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 3, dict(iter=3))
    assert {p: (work / p).read_bytes() for p in _files(work)} == before
    assert _state(runner, hook) == state


def test_the_first_save_failing_leaves_no_last_checkpoint(tmp_path):
    hook = AtomicCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=2)
    runner = make_runner(tmp_path / 'work', hooks=dict(checkpoint=hook))
    hook.before_train(runner)
    _failing_save(runner, tmp_path, _DiskFull('full'))
    with pytest.raises(RuntimeError, match='iter_1.pth failed'):
        hook._save_checkpoint_with_step(runner, 1, dict(iter=1))
    assert _files(tmp_path / 'work') == []
    assert hook.last_ckpt is None and list(hook.keep_ckpt_ids) == []
    assert runner.message_hub.get_info('keep_ckpt_ids') == []


def test_other_processes_only_join_the_save(tmp_path, monkeypatch):
    runner, hook = _trained(tmp_path)
    work = tmp_path / 'work'
    before = {p: (work / p).read_bytes() for p in _files(work)}
    calls = []
    runner.save_checkpoint = lambda *a, **kw: calls.append(a[1])
    monkeypatch.setattr(hooks_module, 'is_main_process', lambda: False)
    hook._save_checkpoint_with_step(runner, 4, dict(iter=4))
    assert calls == ['.iter_4.pth.tmp']
    assert {p: (work / p).read_bytes() for p in _files(work)} == before
    assert list(hook.keep_ckpt_ids) == [3, 4]


def test_non_local_backends_keep_mmengines_save(tmp_path, monkeypatch):
    runner, hook = _trained(tmp_path, max_iters=1)
    calls = []
    monkeypatch.setattr(CheckpointHook, '_save_checkpoint_with_step',
                        lambda self, *a: calls.append(a) or 'mmengine')
    monkeypatch.setattr(hook, 'file_backend', object())
    assert not hook._is_local()
    assert hook._save_checkpoint_with_step(runner, 7, 'meta') == 'mmengine'
    assert calls == [(runner, 7, 'meta')]
    del hook.file_backend
    assert not hook._is_local()


def test_a_deepspeed_checkpoint_folder_is_pruned(tmp_path):
    runner, hook = _trained(tmp_path)
    work = tmp_path / 'work'
    (work / 'iter_2.pth').unlink()
    (work / 'iter_2.pth').mkdir()
    (work / 'iter_2.pth' / 'shard').write_bytes(b'x')
    hook._save_checkpoint_with_step(runner, 4, dict(iter=4))
    assert _files(work) == ['iter_3.pth', 'iter_4.pth', 'last_checkpoint']


def test_commit_publishes_under_the_final_name(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(hooks_module, '_fsync_path',
                        lambda p, directory=False: synced.append(
                            (p, directory)))
    tmp = tmp_path / '.iter_1.pth.tmp'
    tmp.write_bytes(b'new')
    final = tmp_path / 'iter_1.pth'
    final.write_bytes(b'old')
    AtomicCheckpointHook()._commit(None, str(tmp), str(final))
    assert final.read_bytes() == b'new' and not tmp.exists()
    assert synced == [(str(tmp_path), True)]


def test_the_new_file_is_synced_before_it_is_published(tmp_path,
                                                       monkeypatch):
    runner, hook = _trained(tmp_path, max_iters=1)
    events = []
    real_fsync, real_commit = hooks_module._fsync_path, hook._commit
    monkeypatch.setattr(hooks_module, '_fsync_path', lambda p, directory=False:
                        events.append(('fsync', os.path.basename(p),
                                       directory))
                        or real_fsync(p, directory))
    monkeypatch.setattr(hook, '_commit', lambda r, tmp, final: events.append(
        ('commit', r is runner, os.path.basename(tmp),
         os.path.basename(final))) or real_commit(r, tmp, final))
    hook._save_checkpoint_with_step(runner, 2, dict(iter=2))
    assert events[:3] == [('fsync', '.iter_2.pth.tmp', False),
                          ('commit', True, '.iter_2.pth.tmp', 'iter_2.pth'),
                          ('fsync', 'work', True)]


def test_before_train_removes_what_a_cut_save_left(tmp_path, monkeypatch):
    work = tmp_path / 'work'
    work.mkdir()
    for name in ('.iter_4.pth.tmp', '.epoch_2.pth.tmp', '.last_checkpoint.tmp',
                 'iter_5.pth.tmp', '.x.pth.tmpx', '.pth.tmp', 'iter_3.pth'):
        (work / name).write_bytes(b'x')
    (work / '.iter_6.pth.tmp').mkdir()
    hook = AtomicCheckpointHook(interval=1)
    runner = make_runner(work)
    logs = record_logs(runner)

    monkeypatch.setattr(hooks_module, 'is_main_process', lambda: False)
    hook.before_train(runner)  # other processes leave the files alone
    assert len(_ours(work)) == 8
    monkeypatch.setattr(hooks_module, 'is_main_process', lambda: True)
    hook.before_train(runner)
    assert _ours(work) == [
        '.iter_6.pth.tmp', '.last_checkpoint.tmp', '.pth.tmp', '.x.pth.tmpx',
        'iter_3.pth', 'iter_5.pth.tmp']
    warnings = sorted(m for m in logs.messages('WARNING')
                      if m.startswith('removing'))
    assert warnings == [
        f'removing {work}/{name}, left by a checkpoint save that did not '
        'finish' for name in ('.epoch_2.pth.tmp', '.iter_4.pth.tmp')
    ]
    assert hook.out_dir == str(work)


def test_before_train_leaves_other_backends_alone(tmp_path, monkeypatch):
    work = tmp_path / 'work'
    work.mkdir()
    (work / '.iter_4.pth.tmp').write_bytes(b'x')
    hook = AtomicCheckpointHook(interval=1)
    monkeypatch.setattr(AtomicCheckpointHook, '_is_local', lambda self: False)
    hook.before_train(make_runner(work))
    assert _ours(work) == ['.iter_4.pth.tmp']


def test_max_keep_ckpts_0_keeps_everything(tmp_path):
    runner, hook = _trained(tmp_path, max_keep_ckpts=0)
    work = tmp_path / 'work'
    assert _files(work) == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth',
                            'last_checkpoint']
    _failing_save(runner, tmp_path, _DiskFull('full'))
    with pytest.raises(RuntimeError, match='iter_4.pth failed'):
        hook._save_checkpoint_with_step(runner, 4, dict(iter=4))
    assert hook.last_ckpt == str(work / 'iter_3.pth')
    assert _files(work) == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth',
                            'last_checkpoint']


def test_backend_and_extra_arguments_reach_the_runner(tmp_path):
    hook = AtomicCheckpointHook(interval=1, by_epoch=False,
                                backend_args=dict(backend='local'),
                                custom_arg=7)
    runner = make_runner(tmp_path / 'work', hooks=dict(checkpoint=hook))
    hook.before_train(runner)
    assert hook._is_local()
    calls = []
    runner.save_checkpoint = lambda *a, **kw: calls.append(kw) or open(
        os.path.join(a[0], a[1]), 'wb').close()
    hook._save_checkpoint_with_step(runner, 1, dict(iter=1))
    assert calls[0]['backend_args'] == dict(backend='local')
    assert calls[0]['custom_arg'] == 7
    assert (tmp_path / 'work' / 'last_checkpoint').read_text() == \
        str(tmp_path / 'work' / 'iter_1.pth')
