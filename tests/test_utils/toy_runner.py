"""A tiny mmengine Runner (a 2-in, 1-out linear model) for in-process tests.

Building one takes a fraction of a second and 3 training iterations about
one second, so the runner-level code of mmlla.utils can be tested without
the tools' subprocesses.
"""
import logging
import uuid

import torch
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch import nn

import mmlla  # noqa: F401  (registers the hooks and the allow-list)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=(out**2).mean())
        return out


class ToyData(torch.utils.data.Dataset):

    metainfo = dict(classes=('toy', ))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), 1.0]))


def make_runner(work_dir, hooks=None, max_iters=3, lr=0.01, milestones=(2, ),
                **kwargs):
    """A Runner training ToyModel for ``max_iters`` iterations.

    The default scope the Runner makes current ('mmengine') is dropped
    again: later tests build mmdet components through the registries.
    """
    default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
    default_hooks.update(hooks or {})
    scopes = set(DefaultScope._instance_dict)
    runner = Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=uuid.uuid4().hex,
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        param_scheduler=[
            dict(type='MultiStepLR', milestones=list(milestones),
                 by_epoch=False)
        ],
        default_hooks=default_hooks,
        log_level='INFO',
        **kwargs)
    for name in set(DefaultScope._instance_dict) - scopes:
        del DefaultScope._instance_dict[name]
    return runner


class Records(logging.Handler):
    """Collects ``(levelname, message)`` of the records a logger emits."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.levelname, record.getMessage()))

    def messages(self, level):
        return [m for lv, m in self.records if lv == level]


def record_logs(runner):
    records = Records()
    runner.logger.addHandler(records)
    runner.logger.setLevel(logging.DEBUG)
    return records
