"""protect_runner, read_checkpoint and the resume warnings, in-process.

tests/test_tools/test_safety_resume.py checks them through tools/train.py
subprocesses; here a tiny Runner (toy_runner.py) calls them directly, so
every branch is checked by value: which file is read, with which arguments,
what is logged, what is refused.
"""
import shutil
from collections import OrderedDict
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import MultiStepLR, OptimWrapper, OptimWrapperDict
from mmengine.registry import MODEL_WRAPPERS
from toy_runner import Records, make_runner, record_logs
from torch import nn

import mmlla.utils.runner_safety as rs
from mmlla.utils import (AtomicCheckpointHook, CheckpointError,
                         UnreadableCheckpointError, load_checkpoint_file,
                         protect_runner, read_checkpoint)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A work dir with iter_1.pth .. iter_3.pth of the toy runner."""
    work_dir = tmp_path_factory.mktemp('toy_trained')
    runner = make_runner(work_dir, hooks=dict(checkpoint=AtomicCheckpointHook(
        interval=1, by_epoch=False)))
    runner.train()
    return work_dir


def _protected(tmp_path, **kwargs):
    runner = protect_runner(make_runner(tmp_path / 'work', **kwargs))
    return runner, record_logs(runner)


class _Spy:
    """Records the calls of a function and forwards them to it."""

    def __init__(self, func=None, error=None):
        self.func, self.error, self.calls = func, error, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return self.func(*args, **kwargs) if self.func else None


@pytest.fixture
def read_spy(monkeypatch):
    spy = _Spy(rs.read_checkpoint)
    monkeypatch.setattr(rs, 'read_checkpoint', spy)
    return spy


def _weights(path):
    return load_checkpoint_file(str(path))['state_dict']


def _same_weights(model, state):
    own = model.state_dict()
    return set(own) == set(state) and all(
        torch.equal(own[k], state[k]) for k in own)


# --- protect_runner itself ---
def test_protect_refuses_what_is_not_a_runner():
    with pytest.raises(TypeError, match=r"^SimpleNamespace is not an mmengine"
                       r" Runner: its resume would run meta\['config'\] of a "
                       r'checkpoint as Python, which the mmlla tools do not '
                       r'allow$'):
        protect_runner(SimpleNamespace(resume=None))


def test_protect_returns_the_runner_and_wraps_it_once(tmp_path):
    runner = make_runner(tmp_path)
    assert not getattr(runner, '_mmlla_protected', False)
    assert protect_runner(runner) is runner
    assert runner._mmlla_protected is True
    wrapped = {n: vars(runner)[n]
               for n in ('load_checkpoint', 'resume', 'load_or_resume')}
    assert protect_runner(runner) is runner
    assert {n: vars(runner)[n] for n in wrapped} == wrapped


# --- load_checkpoint ---
def test_load_checkpoint_reads_checks_and_loads(tmp_path, trained, read_spy):
    ckpt = load_checkpoint_file(str(trained / 'iter_3.pth'))
    ckpt['meta']['config'] = 'import os'
    path = str(tmp_path / 'with_config.pth')
    torch.save(ckpt, path)
    runner, logs = _protected(tmp_path)
    hooked = []
    runner.call_hook = lambda name, **kw: hooked.append((name, kw))
    assert not runner._has_loaded

    loaded = runner.load_checkpoint(path)

    assert read_spy.calls == [((path, 'cpu', runner.logger), {})]
    assert hooked == [('after_load_checkpoint', dict(checkpoint=loaded))]
    assert 'config' not in loaded['meta'] and loaded['meta']['iter'] == 3
    assert _same_weights(runner.model, ckpt['state_dict'])
    assert runner._has_loaded is True
    assert logs.messages('WARNING') == [
        f"ignoring meta['config'] of checkpoint {path}: mmengine would run "
        'it as Python; the config comes from the command line only'
    ]
    assert logs.messages('INFO')[-1] == f'Load checkpoint from {path}'


def test_load_checkpoint_arguments(tmp_path, trained, read_spy):
    state = _weights(trained / 'iter_2.pth')
    # keys of a DDP model ('module.' is stripped by default), plus one more
    prefixed = OrderedDict(('module.' + k, v) for k, v in state.items())
    prefixed['module.extra'] = torch.zeros(1)
    path = str(tmp_path / 'prefixed.pth')
    torch.save(dict(state_dict=prefixed), path)
    runner, _ = _protected(tmp_path)
    runner.load_checkpoint(path)  # strict=False: the extra key is fine
    assert _same_weights(runner.model, state)
    with pytest.raises(RuntimeError, match='extra'):
        runner.load_checkpoint(path, strict=True)

    # other revise_keys: 'module.' is then kept, nothing matches
    fresh, _ = _protected(tmp_path / 'b')
    before = {k: v.clone() for k, v in fresh.model.state_dict().items()}

    def location(storage, loc):  # torch.load's callable map_location
        return storage

    fresh.load_checkpoint(path, map_location=location,
                          revise_keys=[('^x', '')])
    assert read_spy.calls[-1] == ((path, location, fresh.logger), {})
    assert _same_weights(fresh.model, before)
    fresh.load_checkpoint(path, revise_keys=[(r'^module\.', '')])
    assert _same_weights(fresh.model, state)


@MODEL_WRAPPERS.register_module(name='_MmllaTestWrapper', force=True)
class _Wrapper(nn.Module):

    def __init__(self, module):
        super().__init__()
        self.module = module


def test_load_checkpoint_into_a_wrapped_model(tmp_path, trained):
    runner, _ = _protected(tmp_path)
    runner.model = _Wrapper(runner.model)
    runner.load_checkpoint(str(trained / 'iter_1.pth'))
    assert _same_weights(runner.model.module, _weights(trained / 'iter_1.pth'))


# --- resume ---
def test_resume_reads_once_and_restores_the_state(tmp_path, trained,
                                                  read_spy):
    path = str(trained / 'iter_2.pth')
    runner, logs = _protected(tmp_path)
    runner.resume(path)
    assert read_spy.calls == [((path, 'cpu', runner.logger), {})]
    assert runner.iter == 2
    assert _same_weights(runner.model, _weights(path))
    assert runner.message_hub.get_info('last_ckpt').endswith('iter_2.pth')
    assert logs.messages('INFO')[0] == f'Load checkpoint from {path}'
    # the checked dict was used once: a later load reads the file again
    runner.load_checkpoint(path)
    assert len(read_spy.calls) == 2


def test_resume_passes_its_arguments_on(tmp_path, trained, read_spy,
                                        monkeypatch):
    path = str(trained / 'iter_3.pth')
    other = str(trained / 'iter_1.pth')
    runner = make_runner(tmp_path)
    seen = []

    def mmengine_resume(*args):
        n = len(read_spy.calls)
        seen.append((args, runner.load_checkpoint(path)['meta']['iter'],
                     len(read_spy.calls) - n))
        # only the first load of the same file takes the preloaded dict
        runner.load_checkpoint(path)
        runner.load_checkpoint(other)
        seen.append(len(read_spy.calls) - n)

    runner.resume = mmengine_resume
    protect_runner(runner)
    warn = _Spy(rs._warn_about_changed_settings)
    monkeypatch.setattr(rs, '_warn_about_changed_settings', warn)

    def location(storage, loc):  # torch.load's callable map_location
        return storage

    assert runner.resume(path, False, True, location) is None
    assert seen == [((path, False, True, location), 3, 0), 2]
    assert read_spy.calls[0] == ((path, location, runner.logger), {})
    assert len(warn.calls) == 1
    args = warn.calls[0][0]
    assert args[:2] == (runner, path) and args[3:] == (False, True)
    assert args[2]['meta']['iter'] == 3
    runner.resume(path, True, False)
    assert seen[-2][0] == (path, True, False, 'default')
    assert read_spy.calls[-3][0][1] == 'cpu'  # 'default': get_device()
    assert warn.calls[-1][0][3:] == (True, False)
    runner.resume(path)  # the defaults: everything is resumed
    assert seen[-2][0] == (path, True, True, 'default')
    assert warn.calls[-1][0][3:] == (True, True)


def test_a_failed_resume_forgets_the_preloaded_checkpoint(
        tmp_path, trained, read_spy):
    path = str(trained / 'iter_3.pth')
    runner = make_runner(tmp_path)
    runner.resume = _Spy(error=ValueError('mmengine failed'))
    protect_runner(runner)
    with pytest.raises(ValueError, match='mmengine failed'):
        runner.resume(path)
    runner.load_checkpoint(path)
    assert len(read_spy.calls) == 2


def test_resume_checks_before_mmengine_runs(tmp_path, trained):
    runner = make_runner(tmp_path)
    runner.resume = mmengine_resume = _Spy()
    protect_runner(runner)
    weights_only = str(tmp_path / 'weights.pth')
    torch.save(dict(state_dict=_weights(trained / 'iter_3.pth')),
               weights_only)
    with pytest.raises(CheckpointError, match=f'checkpoint {weights_only} '
                       'cannot be resumed: it has no meta'):
        runner.resume(weights_only)
    assert mmengine_resume.calls == []


# --- auto-resume and load_or_resume ---
def _work_dir_copy(trained, dst, latest='iter_3.pth'):
    shutil.copytree(trained, dst)
    (dst / 'last_checkpoint').write_text(str(dst / latest))
    return dst


def test_auto_resume_from_the_latest(tmp_path, trained):
    work = _work_dir_copy(trained, tmp_path / 'work')
    runner, logs = _protected(tmp_path, resume=True)
    assert runner.work_dir == str(work)
    runner.load_or_resume()
    assert runner._has_loaded is True and runner.iter == 3
    assert logs.messages('INFO')[-1] == \
        f'Auto resumed from the latest checkpoint {work}/iter_3.pth.'
    assert logs.messages('WARNING') == []


def test_auto_resume_falls_back_to_an_older_checkpoint(tmp_path, trained):
    work = _work_dir_copy(trained, tmp_path / 'work')
    for n in (3, 2):  # two saves cut short
        data = (work / f'iter_{n}.pth').read_bytes()
        (work / f'iter_{n}.pth').write_bytes(data[:len(data) // 2])
    runner, logs = _protected(tmp_path, resume=True)
    runner.load_or_resume()
    assert runner.iter == 1
    assert _same_weights(runner.model, _weights(work / 'iter_1.pth'))
    warnings = logs.messages('WARNING')
    assert len(warnings) == 3
    for n, warning in zip((3, 2), warnings):
        assert warning.startswith(f'checkpoint {work}/iter_{n}.pth cannot be '
                                  'read (truncated or corrupt?)')
        assert warning.endswith('; trying an older checkpoint')
    assert warnings[2] == (
        f'Auto resumed from {work}/iter_1.pth, an older checkpoint: '
        f'{work}/iter_3.pth, {work}/iter_2.pth could not be read (a save cut '
        'short?)')


def test_auto_resume_with_nothing_readable_is_refused(tmp_path, trained):
    work = _work_dir_copy(trained, tmp_path / 'work', latest='iter_2.pth')
    for n in (1, 2, 3):
        data = (work / f'iter_{n}.pth').read_bytes()
        (work / f'iter_{n}.pth').write_bytes(data[:len(data) // 2])
    runner, _ = _protected(tmp_path, resume=True)
    with pytest.raises(CheckpointError, match=(
            f'^--resume: no checkpoint in {work} can be read '
            rf'\({work}/iter_2.pth, {work}/iter_3.pth, {work}/iter_1.pth\)$')):
        runner.load_or_resume()
    assert runner._has_loaded is False


def test_auto_resume_never_skips_a_refused_checkpoint(tmp_path, trained):
    work = _work_dir_copy(trained, tmp_path / 'work')
    ckpt = load_checkpoint_file(str(work / 'iter_3.pth'))
    del ckpt['message_hub']
    torch.save(ckpt, str(work / 'iter_3.pth'))
    runner, _ = _protected(tmp_path, resume=True)
    with pytest.raises(CheckpointError, match='iter_3.pth cannot be resumed: '
                       'it holds no message_hub'):
        runner.load_or_resume()
    assert runner.iter == 0


def test_auto_resume_without_checkpoints_trains_from_scratch(tmp_path):
    (tmp_path / 'work').mkdir()
    runner, logs = _protected(tmp_path, resume=True)
    runner.load_or_resume()
    assert logs.messages('INFO')[-1] == (
        f'no checkpoint to resume from in {tmp_path}/work: training from '
        'scratch')
    assert runner._has_loaded is True and runner.iter == 0


@pytest.mark.parametrize('resume,load_from,called', [
    (True, 'a.pth', ('resume', 'a.pth')),
    (False, 'b.pth', ('load_checkpoint', 'b.pth')),
    (False, None, None),
])
def test_load_or_resume_branches(tmp_path, resume, load_from, called):
    runner, _ = _protected(tmp_path)
    runner._resume, runner._load_from = resume, load_from
    calls = []
    runner.resume = lambda f: calls.append(('resume', f))
    runner.load_checkpoint = lambda f: calls.append(('load_checkpoint', f))
    runner.load_or_resume()
    assert calls == ([called] if called else [])
    assert runner._has_loaded is (called is not None)
    runner._has_loaded = True
    runner.load_or_resume()  # loaded already: nothing more
    assert len(calls) == (1 if called else 0)


# --- read_checkpoint ---
def test_read_checkpoint_of_a_local_file(tmp_path, trained):
    ckpt = load_checkpoint_file(str(trained / 'iter_1.pth'))
    ckpt['meta']['cfg'] = 'x = 1'
    path = str(tmp_path / 'cfg.pth')
    torch.save(ckpt, path)
    records = Records()
    logger = SimpleNamespace(warning=lambda m: records.records.append(
        ('WARNING', m)))
    out = read_checkpoint(path, logger=logger)
    assert 'cfg' not in out['meta'] and out['meta']['iter'] == 1
    assert records.records == []  # only 'config' is run by Runner.resume
    ckpt['meta']['config'] = 'import os'
    torch.save(ckpt, path)
    assert 'config' not in read_checkpoint(path, 'cpu')['meta']  # no logger
    read_checkpoint(path, logger=logger)
    assert records.records == [(
        'WARNING', f"ignoring meta['config'] of checkpoint {path}: mmengine "
        'would run it as Python; the config comes from the command line only'
    )]
    torch.save(dict(state_dict=dict(w=[1.0])), path)
    with pytest.raises(CheckpointError, match=f'checkpoint {path} has '
                       'state_dict values that are not tensors: w'):
        read_checkpoint(path)


def test_read_checkpoint_of_a_url(monkeypatch):
    calls = []
    state = dict(w=torch.ones(1))

    def fake_load(filename, map_location=None):
        calls.append((filename, map_location))
        if filename.endswith('bad.pth'):
            raise ValueError('HTTP 404')
        return dict(state_dict=state, meta=dict(config='import os'))

    monkeypatch.setattr(rs, '_load_checkpoint', fake_load)
    url = 'https://example.com/m.pth'
    out = read_checkpoint(url, 'meta')
    assert calls == [(url, 'meta')] and out == dict(state_dict=state, meta={})
    bad = 'https://example.com/bad.pth'
    with pytest.raises(UnreadableCheckpointError) as info:
        read_checkpoint(bad)
    assert str(info.value) == \
        f'checkpoint {bad} cannot be read: ValueError: HTTP 404'
    assert isinstance(info.value.__cause__, ValueError)
    assert calls[-1] == (bad, 'cpu')


# --- _warn_about_changed_settings ---
def _sgd(lr, end=10):
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr, momentum=0.9)
    return opt, MultiStepLR(opt, milestones=[8], by_epoch=False, begin=0,
                            end=end)


def _warn(checkpoint, resume_optimizer=True, resume_param_scheduler=True,
          wrapper=None, schedulers=None):
    opt, sched = _sgd(lr=0.5, end=20)
    warnings = []
    runner = SimpleNamespace(
        optim_wrapper=OptimWrapper(opt) if wrapper is None else wrapper,
        param_schedulers=[sched] if schedulers is None else schedulers,
        logger=SimpleNamespace(warning=warnings.append))
    rs._warn_about_changed_settings(runner, 'c.pth', checkpoint,
                                    resume_optimizer, resume_param_scheduler)
    return warnings


OPT_DIFF = ('optimizer lr (before scheduling): 0.5 in the config, 0.1 in the '
            'checkpoint')
SCHED_DIFF = ('param_scheduler[0] (MultiStepLR) end: 20 in the config, 10 in '
              'the checkpoint')


def _saved():
    opt, sched = _sgd(lr=0.1, end=10)
    return dict(optimizer=opt.state_dict(),
                param_schedulers=[sched.state_dict()])


def test_changed_settings_warning_names_every_difference():
    assert _warn(_saved()) == [
        "resuming from c.pth: the config's optimizer / parameter scheduler "
        "settings differ from the checkpoint's, and the checkpoint's values "
        'win (--resume restores its optimizer and scheduler state): ' +
        OPT_DIFF + '; ' + SCHED_DIFF + '. To train with the new settings, '
        'start a new run from these weights (load_from, without --resume).'
    ]


def _diffs(warnings):
    assert len(warnings) <= 1
    return [d for d in (OPT_DIFF, SCHED_DIFF) if warnings and d in warnings[0]]


def test_changed_settings_only_for_what_is_resumed():
    saved = _saved()
    assert _diffs(_warn(saved, resume_optimizer=False)) == [SCHED_DIFF]
    assert _diffs(_warn(saved, resume_param_scheduler=False)) == [OPT_DIFF]
    assert _warn(saved, False, False) == []
    assert _diffs(_warn(dict(optimizer=saved['optimizer']))) == [OPT_DIFF]
    assert _diffs(_warn(dict(param_schedulers=saved['param_schedulers']))) \
        == [SCHED_DIFF]
    same_opt, same_sched = _sgd(lr=0.5, end=20)
    assert _warn(dict(optimizer=same_opt.state_dict(),
                      param_schedulers=[same_sched.state_dict()])) == []


def test_changed_settings_skip_what_cannot_be_compared():
    saved = _saved()
    opt, sched = _sgd(lr=0.5, end=20)
    # not built yet (a config dict), or one wrapper per optimizer
    assert _diffs(_warn(saved, wrapper=dict(type='OptimWrapper'))) == \
        [SCHED_DIFF]
    assert _diffs(_warn(saved, wrapper=OptimWrapperDict(
        a=OptimWrapper(opt)))) == [SCHED_DIFF]
    assert _diffs(_warn(saved, schedulers=dict(a=[sched]))) == [OPT_DIFF]
    assert _diffs(_warn(saved, schedulers=[sched, dict(type='x')])) == \
        [OPT_DIFF]


def test_changed_settings_refusal_names_the_file():
    saved = _saved()
    saved['optimizer']['param_groups'].append(
        dict(saved['optimizer']['param_groups'][0], params=[9]))
    with pytest.raises(CheckpointError, match=r'^checkpoint c.pth does not '
                       'fit the optimizer: it has 2 parameter groups'):
        _warn(saved)


def test_read_checkpoint_maps_the_tensors(tmp_path, trained):
    out = read_checkpoint(str(trained / 'iter_1.pth'), 'meta')
    assert {v.device.type for v in out['state_dict'].values()} == {'meta'}
    out = read_checkpoint(str(trained / 'iter_1.pth'))
    assert {v.device.type for v in out['state_dict'].values()} == {'cpu'}
