"""Units of the resume / save / divergence safety (tools tests: test_tools)."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import MultiStepLR

import mmlla  # noqa: F401
from mmlla.utils import (NonFiniteLossError, NonFiniteLossHook,
                         apply_training_safety, check_resume_checkpoint,
                         resume_candidates)
from mmlla.utils.checkpoint import (CheckpointError, get_state_dict,
                                    strip_checkpoint_code)
from mmlla.utils.hooks import atomic_write_text
from mmlla.utils.runner_safety import (optimizer_differences,
                                       scheduler_differences)


def _ckpt(model, **meta):
    return dict(meta=dict(epoch=0, iter=2, **meta),
                state_dict=model.state_dict(), message_hub={})


def test_config_source_is_dropped_from_meta():
    ckpt = _ckpt(torch.nn.Linear(2, 2), config='import os', cfg='x = 1')
    assert strip_checkpoint_code(ckpt) == ['config', 'cfg']
    assert 'config' not in ckpt['meta'] and 'cfg' not in ckpt['meta']
    assert strip_checkpoint_code({'state_dict': {}}) == []


@pytest.mark.parametrize('state,match', [
    ({1: torch.zeros(1)}, 'keys that are not strings: \\[1\\]'),
    ({'w': [1.0]}, 'values that are not tensors: w \\(list\\)'),
    ({'w': 'abc'}, 'values that are not tensors: w \\(str\\)'),
])
def test_state_dict_must_be_tensors_by_name(state, match):
    with pytest.raises(CheckpointError, match='checkpoint f.pth has .*' +
                       match):
        get_state_dict('f.pth', {'state_dict': state})


def test_resume_checkpoint_checks():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    check_resume_checkpoint('ok.pth', _ckpt(model), model)
    no_head = _ckpt(model)
    del no_head['state_dict']['1.weight']
    with pytest.raises(CheckpointError, match='no_head.pth holds weights of '
                       'another model: 1 of'):
        check_resume_checkpoint('no_head.pth', no_head, model)
    bad_iter = _ckpt(model)
    bad_iter['meta']['iter'] = 'x'
    with pytest.raises(CheckpointError, match="bad.pth cannot be resumed: "
                       "meta\\['iter'\\] is 'x'"):
        check_resume_checkpoint('bad.pth', bad_iter, model)
    with pytest.raises(CheckpointError, match='w.pth cannot be resumed: it '
                       'has no meta'):
        check_resume_checkpoint('w.pth', model.state_dict(), model)
    no_hub = _ckpt(model)
    del no_hub['message_hub']
    with pytest.raises(CheckpointError, match='hub.pth cannot be resumed'):
        check_resume_checkpoint('hub.pth', no_hub, model)


def test_resume_candidates_latest_first_then_newest(tmp_path):
    for n in (2, 4, 6):
        (tmp_path / f'iter_{n}.pth').write_bytes(b'x')
    (tmp_path / '.iter_8.pth.tmp').write_bytes(b'x')
    (tmp_path / 'best_x.pth').write_bytes(b'x')
    assert [osp.basename(p) for p in resume_candidates(str(tmp_path))] == \
        ['iter_6.pth', 'iter_4.pth', 'iter_2.pth']
    atomic_write_text(str(tmp_path / 'last_checkpoint'),
                      str(tmp_path / 'iter_4.pth'))
    assert [osp.basename(p) for p in resume_candidates(str(tmp_path))] == \
        ['iter_4.pth', 'iter_6.pth', 'iter_2.pth']
    assert not (tmp_path / '.last_checkpoint.tmp').exists()


def _sgd(lr=0.1, model=None, **kw):
    model = model or torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, **kw)
    MultiStepLR(opt, milestones=[8], by_epoch=False, begin=0, end=10)
    return opt


def test_changed_optimizer_settings_are_reported():
    saved = _sgd(lr=0.1).state_dict()
    assert optimizer_differences('a.pth', saved, _sgd(lr=0.1)) == []
    diffs = optimizer_differences('a.pth', saved,
                                  _sgd(lr=0.5, weight_decay=1e-4))
    assert diffs == [
        'optimizer lr (before scheduling): 0.5 in the config, 0.1 in the '
        'checkpoint',
        'optimizer weight_decay: 0.0001 in the config, 0 in the checkpoint'
    ]


def test_optimizer_state_that_cannot_fit_is_refused():
    saved = _sgd().state_dict()
    two = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match='a.pth does not fit the '
                       'optimizer: parameter group 0 has 2 parameters'):
        optimizer_differences('a.pth', saved, _sgd(model=two))
    adam = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    with pytest.raises(CheckpointError, match='a.pth was written by another '
                       'optimizer'):
        optimizer_differences('a.pth', saved, adam)
    with pytest.raises(CheckpointError, match='no valid optimizer state'):
        optimizer_differences('a.pth', {'state': {}}, adam)


def test_changed_scheduler_settings_are_reported():
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    old = MultiStepLR(opt, milestones=[8], by_epoch=False, begin=0, end=10)
    new = MultiStepLR(opt, milestones=[8], by_epoch=False, begin=0, end=20)
    assert scheduler_differences([old.state_dict()], [old]) == []
    assert scheduler_differences([old.state_dict()], [new]) == [
        'param_scheduler[0] (MultiStepLR) end: 20 in the config, 10 in the '
        'checkpoint'
    ]


def _runner(tmp_path):
    return SimpleNamespace(iter=6, epoch=0, train_loop=None,
                           logger=SimpleNamespace(error=lambda msg: None))


def test_non_finite_loss_hook_names_iteration_and_term(tmp_path):
    hook = NonFiniteLossHook()
    runner = _runner(tmp_path)
    hook.after_train_iter(runner, 0, outputs=dict(
        loss=torch.tensor(1.0), loss_cls=torch.tensor(0.5), acc=float('nan')))
    with pytest.raises(NonFiniteLossError, match=r'non-finite loss at '
                       r'iteration 7: loss=nan, loss_bbox=inf'):
        hook.after_train_iter(runner, 0, outputs=dict(
            loss=torch.tensor(float('nan')), loss_cls=torch.tensor(0.5),
            loss_bbox=torch.tensor([1.0, float('inf')])))
    assert NonFiniteLossHook.priority == 'VERY_HIGH'  # before checkpoints


@pytest.mark.parametrize('config', [
    'configs/fcos/fcos_tiny_synthetic.py',
    'configs/lla/yolox-s_lla-assigner_8xb8-300e_coco.py',
])
def test_training_safety_for_every_config(config, repo_root):
    cfg = Config.fromfile(osp.join(repo_root, config))
    apply_training_safety(cfg)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert cfg.default_hooks.non_finite_loss.type == 'NonFiniteLossHook'
    off = Config(dict(default_hooks=dict(checkpoint=None,
                                         non_finite_loss=None)))
    apply_training_safety(off)
    assert off.default_hooks.checkpoint is None
    assert off.default_hooks.non_finite_loss is None
