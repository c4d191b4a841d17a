"""Shared by the tests that reuse LossAwareAssigner in unmodified mmdet
detectors (RTMDet, RTMDet-Ins, DDOD): the crowded batch, a spy on a
method, a few training steps, and the checks every assigner call must
pass (logits ranked as their sigmoid, K points per row, every person
kept)."""
import contextlib
from unittest import mock

import torch
from mmdet.registry import TASK_UTILS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmdet.structures.mask import BitmapMasks

from head_cases import IMG, crowd


def box_masks(bboxes):
    """Each person's mask: its box, filled."""
    masks = torch.zeros(len(bboxes), IMG, IMG, dtype=torch.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, bboxes.round().long().tolist()):
        m[y1:y2, x1:x2] = 1
    return BitmapMasks(masks.numpy(), IMG, IMG)


def crowd_batch(with_masks=False):
    """Inputs (2, 3, IMG, IMG) and data samples of the crowd fixture,
    ignore regions included."""
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


@contextlib.contextmanager
def spy(obj, name):
    """Record ``(args, kwargs, result)`` of every call of ``obj.name``."""
    calls, real = [], getattr(obj, name)

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    with mock.patch.object(obj, name, side_effect=wrapper):
        yield calls


def train_steps(model, steps=3, batch_fn=crowd_batch):
    """A few SGD steps, finite losses; returns the last losses."""
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    for _ in range(steps):
        # fresh samples each step, as from a data loader (RTMDet-Ins turns
        # gt_instances.masks into a tensor in place)
        inputs, samples = batch_fn()
        losses = model.loss(inputs, samples)
        total, _ = model.parse_losses(losses)  # per-level lists
        assert torch.isfinite(total)
        opt.zero_grad()
        total.backward()
        opt.step()
    return losses


def check_lla_on_logits(assigner, calls, topk, check_overlaps=True):
    """Every recorded ``assign(pred, gt, gt_ignore)`` call: logits given,
    the same assignment as the probability path on sigmoid(logits), the
    points taken = the union of the rows' top-K (<= K x rows), every person
    kept with its label, and (``check_overlaps``) ``max_overlaps`` the IoU
    of each positive's box with its GT."""
    probs_assigner = TASK_UTILS.build(
        dict(type='LossAwareAssigner', prior_type=assigner.prior_type))
    for args, kwargs, result in calls:
        pred, gt, gt_ignore = (list(args) + [
            kwargs.get('pred_instances'), kwargs.get('gt_instances'),
            kwargs.get('gt_instances_ignore')
        ][len(args):])[:3]
        scores = pred.scores
        assert (scores < 0).any()  # logits, not probabilities
        assert pred.priors.shape == (len(scores), 4)
        as_probs = pred.clone()
        as_probs.scores = scores.sigmoid()
        again = probs_assigner.assign(as_probs, gt, gt_ignore)
        assert torch.equal(result.gt_inds, again.gt_inds)
        assert torch.equal(result.labels, again.labels)
        # K points per row (people + ignore regions); a point contested by
        # several rows counts once
        rows = len(gt) + len(gt_ignore)
        taken = int((result.gt_inds != 0).sum())
        index, _ = assigner.candidates(
            assigner.prior_points(pred.priors), scores, pred.bboxes,
            torch.cat([gt.bboxes, gt_ignore.bboxes]),
            torch.cat([gt.labels, gt.labels.new_zeros(len(gt_ignore))]))
        assert taken == index.unique().numel()
        assert rows * topk * 0.6 <= taken <= rows * topk
        pos = result.gt_inds > 0
        assert set(result.gt_inds[pos].tolist()) == set(
            range(1, len(gt) + 1))
        assert torch.equal(result.labels[pos],
                           gt.labels[result.gt_inds[pos] - 1])
        if check_overlaps:
            iou = bbox_overlaps(pred.bboxes[pos],
                                gt.bboxes[result.gt_inds[pos] - 1],
                                is_aligned=True)
            torch.testing.assert_close(result.max_overlaps[pos], iou)
            assert (result.max_overlaps[~pos] == 0).all()
