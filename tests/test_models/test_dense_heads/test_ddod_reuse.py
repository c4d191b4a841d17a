"""The assigner reused in more unmodified mmdet detectors through one-line
configs. DDOD: DDODHead's classification assigner (``assigner``) becomes
LLA with score_type='logits' and prior_type='anchor'; its regression
assigner (``reg_assigner``, ATSS alpha=0.5) stays. The narrowed model trains
on synthetic crowds with finite losses, the assigner saw logits and anchors
and ranked the logits as their sigmoid, and the classification targets
follow the assignment."""
import copy
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmlla  # noqa: F401

from reuse_cases import check_lla_on_logits, crowd_batch, spy, train_steps

register_all_modules(init_default_scope=True)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
DDOD_CONFIG = 'configs/lla/ddod_r50_fpn_lla-assigner_1x_coco.py'
TOPK = 10


def narrowed_ddod(num_classes=2):
    cfg = Config.fromfile(osp.join(REPO, DDOD_CONFIG))
    assert cfg.model.train_cfg.assigner == dict(
        type='LossAwareAssigner', score_type='logits', prior_type='anchor')
    assert cfg.model.train_cfg.reg_assigner == dict(
        type='ATSSAssigner', topk=9, alpha=0.5)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(depth=18, base_channels=16, frozen_stages=-1,
                              norm_eval=False, init_cfg=None)
    model_cfg.neck.update(in_channels=[16, 32, 64, 128], out_channels=32)
    # no DCN (an mmcv CUDA op in training) and GN over 32 channels
    model_cfg.bbox_head.update(in_channels=32, feat_channels=32,
                               stacked_convs=2, use_dcn=False,
                               num_classes=num_classes,
                               norm_cfg=dict(type='GN', num_groups=4,
                                             requires_grad=True))
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    return model


def test_assigner_reused_in_unmodified_mmdet_ddod():
    model = narrowed_ddod()
    head = model.bbox_head
    assert type(head).__name__ == 'DDODHead'
    assigner = head.cls_assigner
    assert type(assigner).__name__ == 'LossAwareAssigner'
    assert assigner.score_type == 'logits' and assigner.topk == TOPK
    assert assigner.prior_type == 'anchor'
    assert type(head.reg_assigner).__name__ == 'ATSSAssigner'
    with spy(assigner, 'assign') as calls:
        losses = train_steps(model)
    assert {'loss_cls', 'loss_bbox', 'loss_iou'} <= set(losses)
    assert len(calls) == 3 * 2
    # DDOD passes everything by keyword, num_level_priors besides, and
    # xyxy anchors as priors
    for args, kwargs, _ in calls:
        assert not args and set(kwargs) == {
            'pred_instances', 'gt_instances', 'gt_instances_ignore',
            'num_level_priors'
        }
        anchors = kwargs['pred_instances'].priors
        assert ((anchors[:, 2] > anchors[:, 0]) &
                (anchors[:, 3] > anchors[:, 1])).all()
    # DDOD does not read max_overlaps
    check_lla_on_logits(assigner, calls, TOPK, check_overlaps=False)


def test_ddod_classification_targets_follow_the_assignment():
    """DDOD's get_cls_targets turns the LLA assignment into classification
    targets through its PseudoSampler: positives their GT class (weight 1),
    background num_classes (weight 1), ignore claims weight 0."""
    model = narrowed_ddod()
    head = model.bbox_head
    inputs, samples = crowd_batch()
    outs = head(model.extract_feat(inputs))
    gts = [s.gt_instances for s in samples]
    ignores = [s.ignored_instances for s in samples]
    metas = [s.metainfo for s in samples]
    with spy(head.cls_assigner, 'assign') as calls, \
            spy(head, 'get_cls_targets') as targets:
        head.loss_by_feat(*outs, gts, metas, ignores)
    assert len(calls) == len(samples)
    (_, labels, weights, _, _, avg_factor) = targets[0][2]
    labels = torch.cat(labels, 1)
    weights = torch.cat(weights, 1)
    results = [result for _, _, result in calls]
    # allowed_border=-1: every anchor is inside, no unmapping
    assert labels.shape[1] == len(results[0].gt_inds)
    num_pos = 0
    for i, result in enumerate(results):
        pos = result.gt_inds > 0
        num_pos += int(pos.sum())
        assert torch.equal(labels[i][pos], result.labels[pos])
        assert (labels[i][~pos] == head.num_classes).all()
        assert (weights[i][result.gt_inds == -1] == 0).all()
        assert (weights[i][result.gt_inds != -1] == 1).all()
    assert avg_factor == num_pos
