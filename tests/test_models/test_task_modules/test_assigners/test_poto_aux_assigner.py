"""POTOAuxAssigner against a dense, loop-based computation of DeFCN §4."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmlla.models.task_modules.assigners import POTOAuxAssigner


def dense_aux_targets(priors, scores, bboxes, gt_boxes, labels, levels,
                      alpha=0.8, topk=9):
    """Per GT: per level top-k quality candidates; threshold mean + std
    (unbiased); positive if candidate, >= threshold and inside the box;
    conflicts -> highest quality. Returns gt_inds (A,) 0/1-based."""
    num_gts, num = len(gt_boxes), len(priors)
    q = np.zeros((num_gts, num))
    for g in range(num_gts):
        for a in range(num):
            b, t = bboxes[a], gt_boxes[g]
            iw = max(0.0, min(b[2], t[2]) - max(b[0], t[0]))
            ih = max(0.0, min(b[3], t[3]) - max(b[1], t[1]))
            inter = iw * ih
            union = (b[2] - b[0]) * (b[3] - b[1]) + (t[2] - t[0]) * (
                t[3] - t[1]) - inter
            q[g, a] = scores[a, labels[g]]**(1 - alpha) * (inter /
                                                          union)**alpha
    best = np.full(num, -1.0)
    owner = np.zeros(num, dtype=int)
    for g in range(num_gts):
        cands = []
        start = 0
        for n in levels:
            order = np.argsort(-q[g, start:start + n], kind='stable')
            cands += list(start + order[:min(topk, n)])
            start += n
        vals = q[g, cands]
        thr = vals.mean() + vals.std(ddof=1)
        for a in cands:
            x, y = priors[a, 0], priors[a, 1]
            t = gt_boxes[g]
            inside = min(x - t[0], y - t[1], t[2] - x, t[3] - y) > 0
            if q[g, a] >= thr and inside and q[g, a] > best[a]:
                best[a] = q[g, a]
                owner[a] = g + 1
    return owner


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_aux_targets_match_dense(seed):
    rng = np.random.default_rng(seed)
    pts = []
    for n, s in ((8, 8), (4, 16), (2, 32)):
        for j in range(n):
            for i in range(n):
                pts.append([(i + 0.5) * s, (j + 0.5) * s, s, s])
    priors = np.array(pts)
    num = len(priors)
    scores = rng.uniform(0.01, 0.99, size=(num, 2))
    ctr = priors[:, :2] + rng.uniform(-6, 6, size=(num, 2))
    wh = rng.uniform(6, 40, size=(num, 2))
    bboxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1)
    c = rng.uniform(8, 56, size=(5, 2))
    s = rng.uniform(10, 40, size=(5, 2))
    gt_boxes = np.concatenate([c - s / 2, c + s / 2], axis=1)
    labels = rng.integers(0, 2, size=5)
    expected = dense_aux_targets(priors, scores, bboxes, gt_boxes, labels,
                                 [64, 16, 4])
    pred = InstanceData(
        priors=torch.tensor(priors, dtype=torch.float64),
        scores=torch.tensor(scores, dtype=torch.float64),
        bboxes=torch.tensor(bboxes, dtype=torch.float64))
    gt = InstanceData(
        bboxes=torch.tensor(gt_boxes, dtype=torch.float64),
        labels=torch.tensor(labels))
    res = POTOAuxAssigner(alpha=0.8, topk=9).assign(
        pred, gt, num_level_priors=[64, 16, 4])
    assert res.gt_inds.tolist() == expected.tolist()
    assert (expected > 0).sum() > 5  # a one-to-many assignment
