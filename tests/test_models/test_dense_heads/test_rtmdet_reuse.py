"""The assigner reused in mmdet's unmodified RTMDet (which hands its assigner
classification logits): the one-line config's model, narrowed, trains on
synthetic crowds with finite losses, LLA takes up to K points per row, and
the assigner saw the logits and ranked them as their sigmoid."""
import copy
import os.path as osp
from unittest import mock

import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmlla  # noqa: F401

from head_cases import IMG, crowd

register_all_modules(init_default_scope=True)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
CONFIG = 'configs/lla/rtmdet-tiny_lla-assigner_8xb32-300e_coco.py'
TOPK = 10


def narrowed_rtmdet(num_classes=2):
    cfg = Config.fromfile(osp.join(REPO, CONFIG))
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


def batch():
    gts, ignores, metas = crowd()
    samples = []
    for inst, ign, meta in zip(gts, ignores, metas):
        s = DetDataSample(metainfo=dict(meta, batch_input_shape=(IMG, IMG)))
        s.gt_instances = inst
        s.ignored_instances = ign
        samples.append(s)
    inputs = torch.rand(2, 3, IMG, IMG, generator=torch.Generator()
                        .manual_seed(0)) * 255
    return inputs, samples


def test_assigner_reused_in_unmodified_mmdet_rtmdet():
    model = narrowed_rtmdet()
    head = model.bbox_head
    assert type(head).__name__ == 'RTMDetSepBNHead'
    assigner = head.assigner
    assert assigner.score_type == 'logits' and assigner.topk == TOPK
    probs_assigner = TASK_UTILS.build(dict(type='LossAwareAssigner'))
    seen = []
    real = assigner.assign

    def spy(pred, gt, gt_ignore=None, **kwargs):
        result = real(pred, gt, gt_ignore, **kwargs)
        seen.append((pred.clone(), gt, gt_ignore, result))
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
    assert {'loss_cls', 'loss_bbox'} <= set(losses)
    assert len(seen) == 3 * len(samples)

    for pred, gt, gt_ignore, result in seen:
        # RTMDet hands logits (not in [0, 1]), points with strides, boxes
        scores = pred.scores
        assert (scores < 0).any()
        assert pred.priors.shape == (len(scores), 4)
        # ranked as their sigmoid: the probability path on sigmoid(logits)
        # gives the same assignment
        as_probs = pred.clone()
        as_probs.scores = scores.sigmoid()
        again = probs_assigner.assign(as_probs, gt, gt_ignore)
        assert torch.equal(result.gt_inds, again.gt_inds)
        assert torch.equal(result.labels, again.labels)
        # LLA takes K points per row (people + ignore regions); a point
        # contested by several rows counts once, so the total is the size
        # of the union of the rows' top-K, <= K x rows
        rows = len(gt) + len(gt_ignore)
        taken = int((result.gt_inds != 0).sum())
        index, _ = assigner.candidates(
            assigner.prior_points(pred.priors), scores, pred.bboxes,
            torch.cat([gt.bboxes, gt_ignore.bboxes]),
            torch.cat([gt.labels, gt.labels.new_zeros(len(gt_ignore))]))
        assert taken == index.unique().numel()
        assert rows * TOPK * 0.6 <= taken <= rows * TOPK
        # every person keeps points; labels follow the GT
        pos = result.gt_inds > 0
        assert set(result.gt_inds[pos].tolist()) == set(
            range(1, len(gt) + 1))
        assert torch.equal(result.labels[pos],
                           gt.labels[result.gt_inds[pos] - 1])
        # the quality target RTMDet reads: the IoU of each positive's
        # predicted box with its GT (small here: an untrained regressor),
        # 0 elsewhere
        iou = bbox_overlaps(pred.bboxes[pos], gt.bboxes[result.gt_inds[pos] -
                                                        1], is_aligned=True)
        torch.testing.assert_close(result.max_overlaps[pos], iou)
        assert (result.max_overlaps[~pos] == 0).all()


def test_rtmdet_quality_target_is_the_assigners_max_overlaps():
    """RTMDet's get_targets turns the assignment into labels (positives:
    their GT class; ignore claims: weight 0) and its quality target
    ``assign_metrics`` = max_overlaps of the positives."""
    model = narrowed_rtmdet()
    head = model.bbox_head
    inputs, samples = batch()
    feats = model.extract_feat(inputs)
    cls_scores, bbox_preds = head(feats)
    results = []
    real = head.assigner.assign

    def spy(*args, **kwargs):
        results.append(real(*args, **kwargs))
        return results[-1]

    captured = {}
    real_targets = head.get_targets

    def get_targets(*args, **kwargs):
        captured['targets'] = real_targets(*args, **kwargs)
        return captured['targets']

    gts = [s.gt_instances for s in samples]
    ignores = [s.ignored_instances for s in samples]
    metas = [s.metainfo for s in samples]
    with mock.patch.object(head.assigner, 'assign', side_effect=spy), \
            mock.patch.object(head, 'get_targets', side_effect=get_targets):
        head.loss_by_feat(cls_scores, bbox_preds, gts, metas, ignores)
    (_, labels, weights, _, metrics, _) = captured['targets'][:6]
    labels = torch.cat(labels, 1)
    weights = torch.cat(weights, 1)
    metrics = torch.cat(metrics, 1)
    for i, result in enumerate(results):
        pos = result.gt_inds > 0
        assert torch.equal(labels[i][pos], result.labels[pos])
        assert (labels[i][~pos] == head.num_classes).all()
        torch.testing.assert_close(metrics[i], result.max_overlaps)
        assert (weights[i][result.gt_inds == -1] == 0).all()
        assert (weights[i][result.gt_inds != -1] == 1).all()
