"""The assigner reused in mmdet's unmodified RTMDet and RTMDet-Ins (which
hand their assigner classification logits): each one-line config's model,
narrowed, trains on crowded fixtures with finite losses, LLA takes up to K
points per row, the assigner saw the logits and ranked them as their
sigmoid, and the host head reads the assignment as it should."""
import copy
import os.path as osp
from functools import partial

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmlla  # noqa: F401

from reuse_cases import check_lla_on_logits, crowd_batch, spy, train_steps

register_all_modules(init_default_scope=True)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
CONFIG = 'configs/lla/rtmdet-tiny_lla-assigner_8xb32-300e_coco.py'
INS_CONFIG = 'configs/lla/rtmdet-ins_tiny_lla-assigner_8xb32-300e_coco.py'
TOPK = 10


def narrowed_rtmdet(config=CONFIG, num_classes=2):
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.model.train_cfg.assigner == dict(
        type='LossAwareAssigner', score_type='logits', prior_type='point')
    model_cfg = copy.deepcopy(cfg.model)
    bn = dict(type='BN')  # SyncBN needs a process group
    model_cfg.backbone.update(widen_factor=0.125, norm_cfg=bn, init_cfg=None)
    model_cfg.neck.update(in_channels=[32, 64, 128], out_channels=32,
                          norm_cfg=bn)
    model_cfg.bbox_head.update(in_channels=32, feat_channels=32,
                               num_classes=num_classes, norm_cfg=bn)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    return model


def test_assigner_reused_in_unmodified_mmdet_rtmdet():
    model = narrowed_rtmdet()
    head = model.bbox_head
    assert type(head).__name__ == 'RTMDetSepBNHead'
    assert head.assigner.score_type == 'logits'
    assert head.assigner.topk == TOPK
    with spy(head.assigner, 'assign') as calls:
        losses = train_steps(model)
    assert {'loss_cls', 'loss_bbox'} <= set(losses)
    assert len(calls) == 3 * 2
    # max_overlaps is RTMDet's quality target: small here (an untrained
    # regressor) but exactly the IoU of each positive's box
    check_lla_on_logits(head.assigner, calls, TOPK)


def test_rtmdet_quality_target_is_the_assigners_max_overlaps():
    """RTMDet's get_targets turns the assignment into labels (positives:
    their GT class; ignore claims: weight 0) and its quality target
    ``assign_metrics`` = max_overlaps of the positives."""
    model = narrowed_rtmdet()
    head = model.bbox_head
    inputs, samples = crowd_batch()
    cls_scores, bbox_preds = head(model.extract_feat(inputs))
    gts = [s.gt_instances for s in samples]
    ignores = [s.ignored_instances for s in samples]
    metas = [s.metainfo for s in samples]
    with spy(head.assigner, 'assign') as calls, \
            spy(head, 'get_targets') as targets:
        head.loss_by_feat(cls_scores, bbox_preds, gts, metas, ignores)
    (_, labels, weights, _, metrics, _) = targets[0][2][:6]
    labels = torch.cat(labels, 1)
    weights = torch.cat(weights, 1)
    metrics = torch.cat(metrics, 1)
    for i, (_, _, result) in enumerate(calls):
        pos = result.gt_inds > 0
        assert torch.equal(labels[i][pos], result.labels[pos])
        assert (labels[i][~pos] == head.num_classes).all()
        torch.testing.assert_close(metrics[i], result.max_overlaps)
        assert (weights[i][result.gt_inds == -1] == 0).all()
        assert (weights[i][result.gt_inds != -1] == 1).all()


def test_assigner_reused_in_unmodified_mmdet_rtmdet_ins():
    model = narrowed_rtmdet(INS_CONFIG)
    head = model.bbox_head
    assert type(head).__name__ == 'RTMDetInsSepBNHead'
    assert head.assigner.score_type == 'logits'
    with spy(head.assigner, 'assign') as calls, \
            spy(head, 'loss_mask_by_feat') as mask_calls:
        losses = train_steps(model,
                             batch_fn=partial(crowd_batch, with_masks=True))
    assert {'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    assert losses['loss_mask'] > 0
    assert len(calls) == 3 * 2 and len(mask_calls) == 3
    check_lla_on_logits(head.assigner, calls, TOPK)
    # the mask loss takes exactly the positives (not the ignore claims),
    # each with its assigned GT's mask
    for k, (_, _, result) in enumerate(calls):
        sampling_results = mask_calls[k // 2][0][2]
        res = sampling_results[k % 2]
        pos = result.gt_inds > 0
        assert torch.equal(res.pos_inds, pos.nonzero().squeeze(1))
        assert torch.equal(res.pos_assigned_gt_inds, result.gt_inds[pos] - 1)
