"""NonFiniteLossHook and the atomic text writes, edge by edge."""
import math
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner import EpochBasedTrainLoop

import mmlla.utils.hooks as hooks_module
from mmlla.utils import NonFiniteLossError, NonFiniteLossHook
from mmlla.utils.hooks import _fsync_path, atomic_write_text

TAIL = ('. Training stops here; no checkpoint of this iteration was saved '
        '(lower the learning rate, or check the data and the loss weights).')


def _runner(train_loop=None, epoch=0):
    errors = []
    return SimpleNamespace(iter=6, epoch=epoch, train_loop=train_loop,
                           logger=SimpleNamespace(error=errors.append),
                           errors=errors)


def _check(outputs, runner=None):
    runner = runner or _runner()
    with pytest.raises(NonFiniteLossError) as info:
        NonFiniteLossHook().after_train_iter(runner, 0, outputs=outputs)
    assert runner.errors == [str(info.value)]
    return str(info.value)


def test_every_loss_term_is_checked():
    assert _check(dict(acc=1.0, loss=torch.tensor(math.nan))) == \
        'non-finite loss at iteration 7: loss=nan' + TAIL
    assert _check(dict(loss_cls=math.inf, loss_bbox=0.5, top=math.nan)) == \
        'non-finite loss at iteration 7: loss_cls=inf' + TAIL
    assert _check(dict(loss_a=-math.inf, loss_b=torch.tensor([0.0, 1.0]),
                       loss_c=torch.tensor([math.inf, 1.0]))) == \
        'non-finite loss at iteration 7: loss_a=-inf, loss_c=inf' + TAIL


def test_finite_and_other_outputs_pass():
    hook, runner = NonFiniteLossHook(), _runner()
    for outputs in (None, [math.nan], dict(loss=1, loss_x=0.5),
                    dict(loss=torch.zeros(0), acc=math.nan, loss_s='nan'),
                    dict(loss=torch.tensor(2.0, dtype=torch.float16))):
        hook.after_train_iter(runner, 0, outputs=outputs)
    assert runner.errors == []


def test_epoch_based_runs_name_the_epoch():
    loop = object.__new__(EpochBasedTrainLoop)
    msg = _check(dict(loss=math.nan), _runner(loop, epoch=2))
    assert msg == 'non-finite loss at iteration 7 (epoch 3): loss=nan' + TAIL


@pytest.fixture
def two_ranks(monkeypatch):
    """A second process whose flag is added by all_reduce."""
    other = dict(bad=False, reduced=[])

    def all_reduce(flag):
        other['reduced'].append(flag.clone())
        flag += float(other['bad'])

    monkeypatch.setattr(hooks_module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(hooks_module, 'all_reduce', all_reduce)
    return other


def test_every_rank_stops_together(two_ranks):
    hook, runner = NonFiniteLossHook(), _runner()
    hook.after_train_iter(runner, 0, outputs=dict(loss=1.0))
    assert [t.tolist() for t in two_ranks['reduced']] == [[0.0]]
    two_ranks['bad'] = True
    assert _check(dict(loss=1.0)) == \
        'non-finite loss on another process at iteration 7' + TAIL
    assert _check(dict(loss=math.nan)) == \
        'non-finite loss at iteration 7: loss=nan' + TAIL
    assert [t.tolist() for t in two_ranks['reduced']][1:] == [[0.0], [1.0]]


def test_one_process_does_not_reduce(monkeypatch):
    def all_reduce(flag):
        raise AssertionError('no collective with one process')

    monkeypatch.setattr(hooks_module, 'all_reduce', all_reduce)
    NonFiniteLossHook().after_train_iter(_runner(), 0, outputs=dict(loss=1.0))
    assert _check(dict(loss=math.nan)).startswith('non-finite loss at ')


@pytest.fixture
def fs_calls(monkeypatch):
    calls = []
    real_open, real_fsync = os.open, os.fsync
    monkeypatch.setattr(hooks_module.os, 'open', lambda p, flags: calls.append(
        ('open', str(p), flags)) or real_open(p, flags))
    monkeypatch.setattr(hooks_module.os, 'fsync', lambda fd: calls.append(
        ('fsync', )) or real_fsync(fd))
    return calls


def test_fsync_path(tmp_path, fs_calls):
    path = tmp_path / 'f'
    path.write_bytes(b'x')
    _fsync_path(str(path))
    _fsync_path(str(tmp_path), directory=True)
    _fsync_path(str(tmp_path / 'missing'))
    assert fs_calls == [('open', str(path), os.O_RDWR), ('fsync', ),
                        ('open', str(tmp_path), os.O_RDONLY), ('fsync', ),
                        ('open', str(tmp_path / 'missing'), os.O_RDWR)]


@pytest.fixture
def published(monkeypatch):
    calls = []
    real_replace, real_fsync_path = os.replace, hooks_module._fsync_path
    monkeypatch.setattr(hooks_module.os, 'replace', lambda a, b: calls.append(
        ('replace', a, b)) or real_replace(a, b))
    monkeypatch.setattr(hooks_module, '_fsync_path',
                        lambda p, directory=False: calls.append(
                            ('fsync_path', p, directory)) or real_fsync_path(
                                p, directory))
    return calls


def test_atomic_write_text_next_to_the_file(tmp_path, published):
    path = str(tmp_path / 'last_checkpoint')
    atomic_write_text(path, 'iter_4.pth')
    tmp = str(tmp_path / '.last_checkpoint.tmp')
    assert published == [('replace', tmp, path),
                         ('fsync_path', str(tmp_path), True)]
    assert open(path).read() == 'iter_4.pth'
    assert sorted(os.listdir(tmp_path)) == ['last_checkpoint']


def test_atomic_write_text_in_the_current_folder(tmp_path, monkeypatch,
                                                 published):
    monkeypatch.chdir(tmp_path)
    atomic_write_text('last_checkpoint', 'a')
    atomic_write_text('last_checkpoint', 'b')
    assert published[:2] == [
        ('replace', './.last_checkpoint.tmp', 'last_checkpoint'),
        ('fsync_path', '.', True)]
    assert open('last_checkpoint').read() == 'b'
    assert os.listdir('.') == ['last_checkpoint']
