"""The assigner reused in an unmodified mmdet detector through a one-line
config: mmdet's YOLOX-S with LLA in place of SimOTA. A narrowed copy of the
model trains on synthetic crowds with finite losses."""
import copy
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmlla  # noqa: F401

from head_cases import IMG, crowd

register_all_modules(init_default_scope=True)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))


def test_assigner_reused_in_unmodified_mmdet_yolox():
    """The reuse config changes only the assigner of mmdet's YOLOX-S; a
    narrowed copy of that model trains for a few iterations."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/lla/yolox-s_lla-assigner_8xb8-300e_coco.py'))
    assert cfg.model.train_cfg.assigner == dict(
        type='LossAwareAssigner', prior_type='point')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(deepen_factor=0.33, widen_factor=0.125)
    model_cfg.neck.update(in_channels=[32, 64, 128], out_channels=32,
                          num_csp_blocks=1)
    model_cfg.bbox_head.update(in_channels=32, feat_channels=32,
                               num_classes=2)
    model_cfg.data_preprocessor.batch_augments = None
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    gt, _, metas = crowd()
    samples = []
    for inst, meta in zip(gt, metas):
        s = DetDataSample(metainfo=dict(meta, batch_input_shape=(IMG, IMG)))
        s.gt_instances = inst
        samples.append(s)
    inputs = torch.rand(2, 3, IMG, IMG, generator=torch.Generator()
                        .manual_seed(0)) * 255
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    for _ in range(3):
        losses = model.loss(inputs, samples)
        total = sum(losses.values())
        assert torch.isfinite(total)
        opt.zero_grad()
        total.backward()
        opt.step()
    assert {'loss_cls', 'loss_bbox', 'loss_obj'} <= set(losses)
