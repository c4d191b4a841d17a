"""The comparisons behind the resume warning: _same, optimizer_differences
and scheduler_differences, edge by edge."""
import math

import numpy as np
import pytest
import torch
from mmengine.optim import MultiStepLR

from mmlla.utils import CheckpointError
from mmlla.utils.runner_safety import (_same, optimizer_differences,
                                       scheduler_differences)


class _Unequal:

    def __eq__(self, other):
        raise ValueError('no truth value')


@pytest.mark.parametrize('a,b,same', [
    (1, 1.0, True), (0.1, 0.1 + 1e-12, True), (0.1, 0.1 + 1e-6, False),
    (0.0, 1e-300, False), (True, 1 + 1e-10, False), (False, 0, True),
    (1, 'a', False), (0.1, None, False),
    (math.nan, math.nan, True), (math.nan, 1.0, False), (1.0, math.nan, False),
    ([1, 2], [1, 2], True), ((0.9, 0.999), [0.9, 0.999 + 1e-13], True),
    ([1, 2], [1, 3], False), ([1, 2], [1], False), ([1], 1, False),
    ([[1, 2]], [[1, 3]], False), ('a', 'a', True), ('a', 'b', False),
    (_Unequal(), 1, False), (np.array([1, 2]), np.array([1, 2]), False),
])
def test_same(a, b, same):
    assert _same(a, b) is same
    assert _same(b, a) is same


def _groups(*lrs, **extra):
    return dict(state={}, param_groups=[
        dict(params=[i], lr=lr, **extra) for i, lr in enumerate(lrs)])


def _opt(*lrs, **extra):
    """Something with an optimizer's state_dict (one param per group)."""
    class FakeOpt:

        def state_dict(self):
            return _groups(*lrs, **extra)

    return FakeOpt()


def _sgd(lr=0.1, scheduled=True, groups=1, **kw):
    params = [dict(params=[torch.nn.Parameter(torch.zeros(1))])
              for _ in range(groups)]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, **kw)
    if scheduled:
        MultiStepLR(opt, milestones=[8], by_epoch=False, begin=0, end=10)
    return opt


@pytest.mark.parametrize('saved', [
    [1], None, dict(state={}), dict(param_groups=[], state=None),
    dict(param_groups=[dict(params=[0])], state=[]),
    dict(param_groups=[dict(lr=0.1)], state={}),
    dict(param_groups=[dict(params=(0, ))], state={}),
    dict(param_groups=[[0]], state={}),
])
def test_invalid_optimizer_state_is_refused(saved):
    with pytest.raises(CheckpointError, match='^checkpoint a.pth holds no '
                       'valid optimizer state$'):
        optimizer_differences('a.pth', saved, _sgd())


def test_another_number_of_groups_is_refused():
    with pytest.raises(CheckpointError, match=(
            r'^checkpoint a.pth does not fit the optimizer: it has 2 '
            r'parameter groups, the config 1 \(another model, or another '
            r'paramwise_cfg\?\)$')):
        optimizer_differences('a.pth', _sgd(groups=2).state_dict(), _sgd())


def test_another_optimizer_type_is_refused():
    adam = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(CheckpointError, match=(
            r"^checkpoint a.pth was written by another optimizer: its "
            r"parameter groups have \['dampening', 'momentum', 'nesterov'\], "
            r"the config's AdamW has \['amsgrad', 'betas', 'eps'\]$")):
        optimizer_differences('a.pth', _sgd().state_dict(), adam)
    # one setting more on one side only is enough
    with pytest.raises(CheckpointError, match=r"have \['foo'\], the config's "
                       r'FakeOpt has \[\]$'):
        optimizer_differences('a.pth', _groups(0.1, foo=1), _opt(0.1))
    with pytest.raises(CheckpointError, match=r"have \[\], the config's "
                       r"FakeOpt has \['foo'\]$"):
        optimizer_differences('a.pth', _groups(0.1), _opt(0.1, foo=1))


def test_scheduler_bookkeeping_and_version_keys_are_not_settings():
    # initial_lr on one side only (a scheduler in one run only): no refusal;
    # the lr is then compared as it is
    scheduled = _sgd(lr=0.1).state_dict()
    assert optimizer_differences('a.pth', scheduled,
                                 _sgd(lr=0.1, scheduled=False)) == []
    assert optimizer_differences('a.pth', _sgd(scheduled=False).state_dict(),
                                 _sgd(lr=0.1)) == []
    assert optimizer_differences('a.pth', scheduled,
                                 _sgd(lr=0.5, scheduled=False)) == [
        'optimizer lr: 0.5 in the config, 0.1 in the checkpoint']
    # torch-version keys: missing in an old checkpoint, or other values
    old_torch = _sgd().state_dict()
    for key in ('foreach', 'fused', 'maximize', 'differentiable'):
        old_torch['param_groups'][0].pop(key, None)
    assert optimizer_differences('a.pth', old_torch, _sgd()) == []
    other = _sgd().state_dict()
    other['param_groups'][0].update(foreach=True, fused=False)
    assert optimizer_differences('a.pth', other, _sgd(foreach=False)) == []


def test_differences_are_counted_per_group_and_capped():
    assert optimizer_differences('a.pth', _groups(1.0, 1.0, 2.0),
                                 _opt(0.5, 0.5, 2.0)) == [
        'optimizer lr: 0.5 in the config, 1.0 in the checkpoint (in 2 of 3 '
        'parameter groups)']
    assert optimizer_differences('a.pth', _groups(1.0, 2.0),
                                 _opt(1.0, 0.5)) == [
        'optimizer lr: 0.5 in the config, 2.0 in the checkpoint (in 1 of 2 '
        'parameter groups)']
    out = optimizer_differences('a.pth', _groups(*[1.0] * 10),
                                _opt(*[i / 10 for i in range(10)]))
    assert out == [f'optimizer lr: {i / 10} in the config, 1.0 in the '
                   'checkpoint (in 1 of 10 parameter groups)'
                   for i in range(8)]


def _multistep(opt, end=10, milestones=(8, )):
    return MultiStepLR(opt, milestones=list(milestones), by_epoch=False,
                       begin=0, end=end)


def test_scheduler_differences_edges():
    opt = _sgd(scheduled=False)
    a, b = _multistep(opt), _multistep(opt, end=20)
    assert scheduler_differences(None, [a]) == []
    assert scheduler_differences({'0': a.state_dict()}, [a]) == []
    assert scheduler_differences([a.state_dict()], [a, b]) == [
        '2 parameter schedulers in the config, 1 in the checkpoint (mmengine '
        'pairs them in order)']
    # an entry that is no dict is skipped, the next one still compared
    assert scheduler_differences([None, a.state_dict()], [a, b]) == [
        'param_scheduler[1] (MultiStepLR) end: 20 in the config, 10 in the '
        'checkpoint']
    # keys on one side only (another mmengine version) are not compared
    extra = dict(a.state_dict(), foo=1)
    assert scheduler_differences([extra], [a]) == []
    assert scheduler_differences([dict(a.state_dict(), last_step=5,
                                       _last_lr=[9.0])], [a]) == []


def test_scheduler_differences_list_every_key():
    opt = _sgd(scheduled=False)
    a = _multistep(opt, end=10, milestones=(8, ))
    b = _multistep(opt, end=20, milestones=(4, ))
    out = scheduler_differences([a.state_dict()], [b])
    assert out == [
        'param_scheduler[0] (MultiStepLR) end: 20 in the config, 10 in the '
        'checkpoint',
        'param_scheduler[0] (MultiStepLR) milestones: Counter({4: 1}) in the '
        'config, Counter({8: 1}) in the checkpoint'
    ]
