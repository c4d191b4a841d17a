"""Shared by the head tests: predictions planted so that the decoded boxes
overlap their GTs (IoU 0.3-0.8, where IoU, GIoU and their targets differ),
and the losses written out independently of mmdet's loss modules."""
from typing import List, Sequence

import torch
from mmengine.structures import InstanceData

IMG = 64
STRIDES = (8, 16, 32)
GN4 = dict(type='GN', num_groups=4, requires_grad=True)


def sizes(img=IMG, strides=STRIDES):
    return [(img // s, img // s) for s in strides]


def grid_points(offset: float, img=IMG, strides=STRIDES) -> torch.Tensor:
    """(A, 4) points ``((col + offset) * s, (row + offset) * s, s, s)``,
    levels in order, row-major: written out, not mmdet's generator."""
    out = []
    for s in strides:
        n = img // s
        for row in range(n):
            for col in range(n):
                out.append([(col + offset) * s, (row + offset) * s, s, s])
    return torch.tensor(out, dtype=torch.float32)


def to_levels(flat: torch.Tensor, img=IMG, strides=STRIDES) -> List:
    """(N, A, K) -> per level (N, K, H, W): the inverse of the heads'
    flattening."""
    out, start = [], 0
    for h, w in sizes(img, strides):
        part = flat[:, start:start + h * w]
        out.append(part.reshape(flat.size(0), h, w, -1).permute(0, 3, 1, 2)
                   .contiguous())
        start += h * w
    return out


def flat_levels(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(m.size(0), -1, m.size(1)) for m in maps
    ], 1)


def crowd(num_imgs=2):
    """Overlapping people (two classes) and one ignore region per image."""
    gts = [
        InstanceData(
            bboxes=torch.tensor([[4., 4., 30., 60.], [20., 6., 50., 58.],
                                 [34., 30., 62., 62.]]),
            labels=torch.tensor([0, 1, 0])),
        InstanceData(
            bboxes=torch.tensor([[10., 12., 40., 50.], [30., 2., 60., 40.]]),
            labels=torch.tensor([1, 0])),
    ][:num_imgs]
    ignores = [
        InstanceData(bboxes=torch.tensor([[24., 20., 56., 56.]])),
        InstanceData(bboxes=torch.tensor([[0., 30., 30., 63.]])),
    ][:num_imgs]
    metas = [
        dict(img_shape=(IMG, IMG), ori_shape=(IMG, IMG), pad_shape=(IMG, IMG),
             scale_factor=(1., 1.))
    ] * num_imgs
    return gts, ignores, metas


def planted_distances(points: torch.Tensor, gts, seed=0) -> torch.Tensor:
    """(N, A, 4) distances whose boxes are jittered copies of the GT box
    nearest to each point's centre (IoU roughly 0.3-0.8 with it), clamped at
    0 as a ReLU head would."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for gt in gts:
        boxes = gt.bboxes
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        d2 = ((points[:, None, :2] - centres[None])**2).sum(-1)
        near = boxes[d2.argmin(1)]
        wh = near[:, 2:] - near[:, :2]
        jitter = (torch.rand(len(points), 4, generator=g) - 0.5) * 0.5
        jittered = near + jitter * wh.repeat(1, 2)
        xy = points[:, :2]
        dist = torch.cat([xy - jittered[:, :2], jittered[:, 2:] - xy], -1)
        out.append(dist.clamp(min=0))
    return torch.stack(out)


def decode(points: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    xy = points[..., :2]
    return torch.cat([xy - dist[..., :2], xy + dist[..., 2:]], -1)


def iou_giou(a: torch.Tensor, b: torch.Tensor):
    """Aligned IoU and GIoU written out (float64)."""
    a, b = a.double(), b.double()
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa
    iw = (torch.minimum(a[:, 2], b[:, 2]) -
          torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) -
          torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = area(a) + area(b) - inter
    iou = inter / union
    ew = torch.maximum(a[:, 2], b[:, 2]) - torch.minimum(a[:, 0], b[:, 0])
    eh = torch.maximum(a[:, 3], b[:, 3]) - torch.minimum(a[:, 1], b[:, 1])
    enclose = ew * eh
    return iou, iou - (enclose - union) / enclose


def focal_from_logits(logits, onehot, alpha=0.25, gamma=2.0):
    """Element-wise sigmoid focal loss of logits (float64, log-sigmoid)."""
    x = logits.double()
    p = x.sigmoid()
    pos = -alpha * (1 - p)**gamma * torch.nn.functional.logsigmoid(x)
    neg = -(1 - alpha) * p**gamma * torch.nn.functional.logsigmoid(-x)
    return torch.where(onehot.bool(), pos, neg)


def focal_from_probs(p, onehot, alpha=0.25, gamma=2.0):
    """Element-wise focal loss of probabilities (float64)."""
    p = p.double()
    pos = -alpha * (1 - p)**gamma * torch.log(p)
    neg = -(1 - alpha) * p**gamma * torch.log(1 - p)
    return torch.where(onehot.bool(), pos, neg)


def bce_logits(x, t):
    x, t = x.double(), t.double()
    return -(t * torch.nn.functional.logsigmoid(x) +
             (1 - t) * torch.nn.functional.logsigmoid(-x))


def onehot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(..., ) labels with ``num_classes`` = background -> (..., C)."""
    out = torch.zeros(*labels.shape, num_classes + 1)
    out.scatter_(-1, labels[..., None], 1)
    return out[..., :num_classes]


def close(actual, expected, rtol=1e-5):
    torch.testing.assert_close(
        torch.as_tensor(actual).double(), torch.as_tensor(expected).double(),
        rtol=rtol, atol=1e-6)
