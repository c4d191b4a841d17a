"""DeFCNFCOSHead (DeFCN's FCOS and ATSS rows), by value: positives from
the assigner, cvpods' normalisers (centerness-weighted GIoU over
max(1, sum of centerness targets), centerness BCE and focal over
max(1, positives)), ignore regions taking no part, sqrt score at
inference."""
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmlla  # noqa: F401
from head_cases import (GN4, IMG, STRIDES, bce_logits, close, crowd, decode,
                        flat_levels, focal_from_logits, grid_points,
                        iou_giou, onehot, planted_distances, sizes,
                        to_levels)

NUM_CLASSES = 2
RANGES = ((-1, 16), (16, 32), (32, 1e8))
ASSIGNERS = {
    'fcos': dict(type='FCOSStyleAssigner', center_sampling_radius=1.5,
                 regress_ranges=RANGES),
    'atss': dict(type='PointATSSAssigner', topk=9, anchor_scale=8.0),
}


def build_head(row='fcos', loss_weight=1.0):
    torch.manual_seed(0)
    head = MODELS.build(dict(
        type='DeFCNFCOSHead', num_classes=NUM_CLASSES, in_channels=8,
        feat_channels=8, stacked_convs=1, strides=STRIDES, norm_cfg=GN4,
        loss_bbox=dict(type='GIoULoss', loss_weight=loss_weight),
        train_cfg=dict(assigner=ASSIGNERS[row]),
        test_cfg=ConfigDict(nms_pre=1000, score_thr=0.05,
                            nms=dict(type='nms', iou_threshold=0.6),
                            max_per_img=100)))
    head.init_weights()
    return head


def centerness(points, boxes):
    """Written out: sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))."""
    out = []
    for (x, y), (x1, y1, x2, y2) in zip(points.tolist(), boxes.tolist()):
        l, t, r, b = x - x1, y - y1, x2 - x, y2 - y
        out.append(math.sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)))
    return torch.tensor(out, dtype=torch.float64)


def expected(head, cls, box, ctr, gts, loss_weight):
    points = grid_points(0.5)
    logits, dist = flat_levels(cls), flat_levels(box)
    ctr_logits = flat_levels(ctr)[..., 0]
    boxes = decode(points, dist)
    focal = giou_w = bce = ctr_sum = 0.
    num_pos = 0
    for i, gt in enumerate(gts):
        res = head.assigner.assign(
            InstanceData(priors=points), gt,
            num_level_priors=[h * w for h, w in sizes()])
        pos = res.gt_inds > 0
        labels = torch.full((len(points), ), NUM_CLASSES)
        labels[pos] = gt.labels[res.gt_inds[pos] - 1]
        focal += focal_from_logits(logits[i],
                                   onehot(labels, NUM_CLASSES)).sum()
        targets = gt.bboxes[res.gt_inds[pos] - 1]
        c = centerness(points[pos, :2], targets)
        _, giou = iou_giou(boxes[i][pos], targets)
        giou_w += (c * (1 - giou)).sum()
        bce += bce_logits(ctr_logits[i][pos], c).sum()
        ctr_sum += c.sum()
        num_pos += int(pos.sum())
    return dict(
        loss_cls=focal / max(1, num_pos),
        loss_bbox=loss_weight * giou_w / max(1., float(ctr_sum)),
        loss_centerness=bce / max(1, num_pos)), num_pos, float(ctr_sum)


@pytest.mark.parametrize('row, weight', [('fcos', 1.0), ('atss', 2.0)])
def test_losses_by_value(row, weight):
    head = build_head(row, weight)
    gts, ign, metas = crowd()
    points = grid_points(0.5)
    g = torch.Generator().manual_seed(1)
    cls = to_levels(torch.randn(2, len(points), NUM_CLASSES, generator=g))
    box = to_levels(planted_distances(points, gts, 1))
    ctr = to_levels(torch.randn(2, len(points), 1, generator=g))
    losses = head.loss_by_feat(cls, box, ctr, gts, metas, ign)
    want, num_pos, ctr_sum = expected(head, cls, box, ctr, gts, weight)
    assert num_pos > 4 and ctr_sum > 1
    for key, value in want.items():
        close(losses[key], value)
    # ignore regions take no part
    again = head.loss_by_feat(cls, box, ctr, gts, metas, None)
    for key in losses:
        torch.testing.assert_close(again[key], losses[key])


def test_centerness_normaliser_is_at_least_one():
    # one small GT: two P3 positives whose centerness sums to 0.58 < 1;
    # the GIoU sum is divided by 1, not by 0.58
    head = build_head('fcos')
    gts = [InstanceData(bboxes=torch.tensor([[10., 10., 20., 26.]]),
                        labels=torch.tensor([1]))]
    points = grid_points(0.5)
    g = torch.Generator().manual_seed(2)
    cls = to_levels(torch.randn(1, len(points), NUM_CLASSES, generator=g))
    box = to_levels(planted_distances(points, gts, 2))
    ctr = to_levels(torch.randn(1, len(points), 1, generator=g))
    metas = crowd(1)[2]
    losses = head.loss_by_feat(cls, box, ctr, gts, metas)
    want, num_pos, ctr_sum = expected(head, cls, box, ctr, gts, 1.0)
    assert num_pos == 2 and 0.5 < ctr_sum < 0.65
    for key, value in want.items():
        close(losses[key], value)


def test_inference_sqrt_score_and_nms():
    head = build_head('fcos')
    head.eval()
    cls = [torch.full((1, NUM_CLASSES, h, w), -9.) for h, w in sizes()]
    box = [torch.full((1, 4, h, w), 6.) for h, w in sizes()]
    ctr = [torch.zeros(1, 1, h, w) for h, w in sizes()]
    cls[0][0, 1, 3, 3] = 1.0   # P3 (28, 28): box [22, 22, 34, 34]
    ctr[0][0, 0, 3, 3] = -2.0
    cls[0][0, 1, 3, 4] = 0.5   # P3 (36, 28): IoU 1/3 with it, kept
    res = head.predict_by_feat(cls, box, ctr,
                               batch_img_metas=crowd(1)[2])[0]
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    close(res.scores, sorted([math.sqrt(sig(1.0) * sig(-2.0)),
                              math.sqrt(sig(0.5) * 0.5)], reverse=True))
    close(res.bboxes, [[30., 22., 42., 34.], [22., 22., 34., 34.]])
