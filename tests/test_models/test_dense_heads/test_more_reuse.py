"""The assigner reused in more unmodified mmdet detectors through one-line
configs. DDOD: DDODHead's classification assigner (``assigner``) becomes
LLA with score_type='logits' and prior_type='anchor'; its regression
assigner (``reg_assigner``, ATSS alpha=0.5) stays. The narrowed model trains
on synthetic crowds with finite losses, the assigner saw logits and anchors
and ranked the logits as their sigmoid, and the classification targets
follow the assignment."""
import copy
import os.path as osp
from unittest import mock

import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmlla  # noqa: F401

from head_cases import IMG, crowd

register_all_modules(init_default_scope=True)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
DDOD_CONFIG = 'configs/lla/ddod_r50_fpn_lla-assigner_1x_coco.py'
INS_CONFIG = 'configs/lla/rtmdet-ins_tiny_lla-assigner_8xb32-300e_coco.py'
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


def box_masks(bboxes):
    """Each person's mask: its box, filled."""
    masks = torch.zeros(len(bboxes), IMG, IMG, dtype=torch.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, bboxes.round().long().tolist()):
        m[y1:y2, x1:x2] = 1
    return BitmapMasks(masks.numpy(), IMG, IMG)


def batch(with_masks=False):
    gts, ignores, metas = crowd()
    samples = []
    for inst, ign, meta in zip(gts, ignores, metas):
        if with_masks:
            inst.masks = box_masks(inst.bboxes)
        s = DetDataSample(metainfo=dict(meta, batch_input_shape=(IMG, IMG)))
        s.gt_instances = inst
        s.ignored_instances = ign
        samples.append(s)
    inputs = torch.rand(2, 3, IMG, IMG, generator=torch.Generator()
                        .manual_seed(0)) * 255
    return inputs, samples


def test_assigner_reused_in_unmodified_mmdet_ddod():
    model = narrowed_ddod()
    head = model.bbox_head
    assert type(head).__name__ == 'DDODHead'
    assigner = head.cls_assigner
    assert type(assigner).__name__ == 'LossAwareAssigner'
    assert assigner.score_type == 'logits' and assigner.topk == TOPK
    assert assigner.prior_type == 'anchor'
    assert type(head.reg_assigner).__name__ == 'ATSSAssigner'
    probs_assigner = TASK_UTILS.build(dict(type='LossAwareAssigner'))
    seen, kwargs_seen = [], []
    real = assigner.assign

    def spy(pred_instances, gt_instances, gt_instances_ignore=None,
            **kwargs):
        result = real(pred_instances, gt_instances, gt_instances_ignore,
                      **kwargs)
        seen.append((pred_instances.clone(), gt_instances,
                     gt_instances_ignore, result))
        kwargs_seen.append(set(kwargs))
        return result

    inputs, samples = batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    with mock.patch.object(assigner, 'assign', side_effect=spy):
        for _ in range(3):
            losses = model.loss(inputs, samples)
            total, _ = model.parse_losses(losses)  # per-level lists
            assert torch.isfinite(total)
            opt.zero_grad()
            total.backward()
            opt.step()
    assert {'loss_cls', 'loss_bbox', 'loss_iou'} <= set(losses)
    assert len(seen) == 3 * len(samples)
    # DDOD passes everything by keyword, num_level_priors besides
    assert all(k == {'num_level_priors'} for k in kwargs_seen)

    for pred, gt, gt_ignore, result in seen:
        # DDOD hands logits (not in [0, 1]), xyxy anchors, decoded boxes
        scores = pred.scores
        assert (scores < 0).any()
        anchors = pred.priors
        assert anchors.shape == (len(scores), 4)
        assert ((anchors[:, 2] > anchors[:, 0]) &
                (anchors[:, 3] > anchors[:, 1])).all()
        # ranked as their sigmoid: the probability path on sigmoid(logits)
        # gives the same assignment (anchors read as anchors by 'auto')
        as_probs = pred.clone()
        as_probs.scores = scores.sigmoid()
        again = probs_assigner.assign(as_probs, gt, gt_ignore)
        assert torch.equal(result.gt_inds, again.gt_inds)
        assert torch.equal(result.labels, again.labels)
        # K anchors per row (people + ignore regions); the total is the
        # size of the union of the rows' top-K
        rows = len(gt) + len(gt_ignore)
        taken = int((result.gt_inds != 0).sum())
        index, _ = assigner.candidates(
            assigner.prior_points(anchors), scores, pred.bboxes,
            torch.cat([gt.bboxes, gt_ignore.bboxes]),
            torch.cat([gt.labels, gt.labels.new_zeros(len(gt_ignore))]))
        assert taken == index.unique().numel()
        assert rows * TOPK * 0.6 <= taken <= rows * TOPK
        # every person keeps anchors; labels follow the GT
        pos = result.gt_inds > 0
        assert set(result.gt_inds[pos].tolist()) == set(
            range(1, len(gt) + 1))
        assert torch.equal(result.labels[pos],
                           gt.labels[result.gt_inds[pos] - 1])


def test_ddod_classification_targets_follow_the_assignment():
    """DDOD's get_cls_targets turns the LLA assignment into classification
    targets through its PseudoSampler: positives their GT class (weight 1),
    background num_classes (weight 1), ignore claims weight 0."""
    model = narrowed_ddod()
    head = model.bbox_head
    inputs, samples = batch()
    feats = model.extract_feat(inputs)
    outs = head(feats)
    results = []
    real = head.cls_assigner.assign

    def spy(*args, **kwargs):
        results.append(real(*args, **kwargs))
        return results[-1]

    captured = {}
    real_targets = head.get_cls_targets

    def get_cls_targets(*args, **kwargs):
        captured['targets'] = real_targets(*args, **kwargs)
        return captured['targets']

    gts = [s.gt_instances for s in samples]
    ignores = [s.ignored_instances for s in samples]
    metas = [s.metainfo for s in samples]
    with mock.patch.object(head.cls_assigner, 'assign', side_effect=spy), \
            mock.patch.object(head, 'get_cls_targets',
                              side_effect=get_cls_targets):
        head.loss_by_feat(*outs, gts, metas, ignores)
    assert len(results) == len(samples)
    (_, labels, weights, _, _, avg_factor) = captured['targets']
    labels = torch.cat(labels, 1)
    weights = torch.cat(weights, 1)
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


def narrowed_rtmdet_ins(num_classes=2):
    cfg = Config.fromfile(osp.join(REPO, INS_CONFIG))
    assert cfg.model.train_cfg.assigner == dict(
        type='LossAwareAssigner', score_type='logits')
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


def test_assigner_reused_in_unmodified_mmdet_rtmdet_ins():
    model = narrowed_rtmdet_ins()
    head = model.bbox_head
    assert type(head).__name__ == 'RTMDetInsSepBNHead'
    assigner = head.assigner
    assert assigner.score_type == 'logits' and assigner.topk == TOPK
    probs_assigner = TASK_UTILS.build(dict(type='LossAwareAssigner'))
    seen = []
    real = assigner.assign

    def spy(pred, gt, gt_ignore=None, **kwargs):
        result = real(pred, gt, gt_ignore, **kwargs)
        seen.append((pred.clone(), gt, gt_ignore, result))
        return result

    captured = []
    real_mask_loss = head.loss_mask_by_feat

    def mask_loss(mask_feats, kernels, sampling_results, gts):
        captured.append([(r.pos_inds.clone(), r.pos_assigned_gt_inds.clone())
                         for r in sampling_results])
        return real_mask_loss(mask_feats, kernels, sampling_results, gts)

    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    with mock.patch.object(assigner, 'assign', side_effect=spy), \
            mock.patch.object(head, 'loss_mask_by_feat',
                              side_effect=mask_loss):
        for _ in range(3):
            # fresh samples each step, as from a data loader: the head
            # turns gt_instances.masks into a tensor in place
            inputs, samples = batch(with_masks=True)
            losses = model.loss(inputs, samples)
            total, _ = model.parse_losses(losses)
            assert torch.isfinite(total)
            assert losses['loss_mask'] > 0
            opt.zero_grad()
            total.backward()
            opt.step()
    assert {'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    assert len(seen) == 3 * len(samples) and len(captured) == 3

    for k, (pred, gt, gt_ignore, result) in enumerate(seen):
        scores = pred.scores
        assert (scores < 0).any()
        assert pred.priors.shape == (len(scores), 4)
        as_probs = pred.clone()
        as_probs.scores = scores.sigmoid()
        again = probs_assigner.assign(as_probs, gt, gt_ignore)
        assert torch.equal(result.gt_inds, again.gt_inds)
        assert torch.equal(result.labels, again.labels)
        rows = len(gt) + len(gt_ignore)
        taken = int((result.gt_inds != 0).sum())
        assert rows * TOPK * 0.6 <= taken <= rows * TOPK
        pos = result.gt_inds > 0
        assert set(result.gt_inds[pos].tolist()) == set(
            range(1, len(gt) + 1))
        assert torch.equal(result.labels[pos],
                           gt.labels[result.gt_inds[pos] - 1])
        iou = bbox_overlaps(pred.bboxes[pos], gt.bboxes[result.gt_inds[pos] -
                                                        1], is_aligned=True)
        torch.testing.assert_close(result.max_overlaps[pos], iou)
        assert (result.max_overlaps[~pos] == 0).all()
        # the mask loss takes exactly the positives (not the ignore
        # claims), each with its assigned GT's mask
        pos_inds, pos_gt = captured[k // len(samples)][k % len(samples)]
        assert torch.equal(pos_inds, pos.nonzero().squeeze(1))
        assert torch.equal(pos_gt, result.gt_inds[pos] - 1)
