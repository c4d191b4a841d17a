"""POTOHead: forward shapes, NMS-free inference (no NMS called, at most
max_per_img), NMS switch, losses (ignore, empty), a few training steps."""
from unittest import mock

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS

import mmlla  # noqa: F401  (registers POTOHead)

STRIDES = [8, 16, 32]
FOCAL = dict(
    type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
    loss_weight=1.0)


def build_head(with_3dmf=True, aux=False, assigner=None, nms=None,
               max_per_img=7):
    cfg = dict(
        type='POTOHead',
        num_classes=2,
        in_channels=8,
        feat_channels=8,
        stacked_convs=1,
        strides=STRIDES,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        with_3dmf=with_3dmf,
        aux_loss=FOCAL if aux else None,
        train_cfg=dict(assigner=assigner or dict(type='POTOAssigner')),
        test_cfg=dict(
            nms_pre=1000, score_thr=0.0, nms=nms, max_per_img=max_per_img))
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def inputs(num_imgs=2):
    torch.manual_seed(0)
    return [torch.randn(num_imgs, 8, 64 // s, 64 // s) for s in STRIDES]


def targets():
    gts = [
        InstanceData(
            bboxes=torch.tensor([[4., 4., 30., 40.], [24., 8., 60., 30.]]),
            labels=torch.tensor([0, 1])),
        InstanceData(
            bboxes=torch.tensor([[10., 10., 50., 50.]]),
            labels=torch.tensor([1]))
    ]
    ignores = [
        InstanceData(bboxes=torch.tensor([[40., 40., 60., 60.]])),
        InstanceData(bboxes=torch.zeros(0, 4))
    ]
    metas = [dict(img_shape=(64, 64), scale_factor=(1., 1.))] * 2
    return gts, ignores, metas


@pytest.mark.parametrize('with_3dmf', [True, False])
def test_forward_shapes(with_3dmf):
    head = build_head(with_3dmf)
    cls, reg, filt = head(inputs())
    for c, r, f, s in zip(cls, reg, filt, STRIDES):
        assert c.shape == (2, 2, 64 // s, 64 // s)
        assert r.shape == (2, 4, 64 // s, 64 // s)
        assert (r >= 0).all()
        if with_3dmf:
            assert f.shape == (2, 1, 64 // s, 64 // s)
        else:
            assert f is None


def test_nms_free_inference_calls_no_nms():
    head = build_head(max_per_img=7).eval()
    _, _, metas = targets()
    with mock.patch('mmdet.models.dense_heads.base_dense_head.batched_nms'
                    ) as nms1, mock.patch(
                        'mmcv.ops.batched_nms') as nms2, mock.patch(
                            'mmdet.models.layers.multiclass_nms') as nms3:
        with torch.no_grad():
            results = head.predict_by_feat(*head(inputs()),
                                           batch_img_metas=metas)
        nms1.assert_not_called()
        nms2.assert_not_called()
        nms3.assert_not_called()
    for res in results:
        assert len(res) == 7
        assert (res.scores[:-1] >= res.scores[1:]).all()
    # scores are sigmoid(cls) * sigmoid(filter): the best one equals the
    # maximum of that product over every point and class
    with torch.no_grad():
        cls, _, filt = head(inputs())
    best = max((c[0].sigmoid() * f[0].sigmoid()).max().item()
               for c, f in zip(cls, filt))
    assert results[0].scores[0].item() == pytest.approx(best, rel=1e-5)


def test_nms_switch_calls_nms():
    head = build_head(nms=dict(type='nms', iou_threshold=0.6)).eval()
    _, _, metas = targets()
    from mmdet.models.dense_heads import base_dense_head
    with mock.patch.object(
            base_dense_head, 'batched_nms',
            wraps=base_dense_head.batched_nms) as nms:
        with torch.no_grad():
            results = head.predict_by_feat(*head(inputs()),
                                           batch_img_metas=metas)
        assert nms.call_count == 2
    assert all(len(r) <= 7 for r in results)


def test_test_cfg_max_per_img_bounds_results():
    head = build_head(max_per_img=3).eval()
    _, _, metas = targets()
    cfg = ConfigDict(nms_pre=1000, score_thr=0.0, nms=None, max_per_img=3)
    with torch.no_grad():
        results = head.predict_by_feat(
            *head(inputs()), batch_img_metas=metas, cfg=cfg)
    assert [len(r) for r in results] == [3, 3]


@pytest.mark.parametrize('with_3dmf,aux', [(True, True), (False, False)])
def test_loss_values_and_ignore(with_3dmf, aux):
    head = build_head(with_3dmf, aux)
    gts, ignores, metas = targets()
    outs = head(inputs())
    losses = head.loss_by_feat(*outs, gts, metas, ignores)
    assert set(losses) == ({'loss_cls', 'loss_bbox', 'loss_aux'}
                           if aux else {'loss_cls', 'loss_bbox'})
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())

    # recompute the focal loss by hand from the assignment: ignored points
    # are excluded, normalised by the 3 positives (one per GT)
    cls, reg, filt = outs
    priors = torch.cat(
        head.prior_generator.grid_priors([c.shape[-2:] for c in cls],
                                         device='cpu',
                                         with_stride=True))
    total = 0.
    for i in range(2):
        prob = torch.cat([c[i].permute(1, 2, 0).reshape(-1, 2) for c in cls
                          ]).sigmoid()
        if with_3dmf:
            prob = prob * torch.cat(
                [f[i].permute(1, 2, 0).reshape(-1, 1)
                 for f in filt]).sigmoid()
        dist = torch.cat([r[i].permute(1, 2, 0).reshape(-1, 4) for r in reg])
        boxes = torch.cat([priors[:, :2] - dist[:, :2],
                           priors[:, :2] + dist[:, 2:]], dim=1)
        res = head.assigner.assign(
            InstanceData(priors=priors, scores=prob.detach(),
                         bboxes=boxes.detach()), gts[i], ignores[i])
        target = torch.zeros_like(prob)
        pos = res.gt_inds > 0
        target[pos, gts[i].labels[res.gt_inds[pos] - 1]] = 1
        assert pos.sum() == len(gts[i])
        assert (res.gt_inds == -1).sum() == len(ignores[i])
        keep = res.gt_inds >= 0
        p, t = prob[keep], target[keep]
        pt = p * t + (1 - p) * (1 - t)
        w = 0.25 * t + 0.75 * (1 - t)
        total = total + (-w * (1 - pt)**2 * torch.log(pt)).sum()
    assert losses['loss_cls'].item() == pytest.approx(
        total.item() / 3, rel=1e-4)


def test_loss_without_gts():
    head = build_head(aux=True)
    _, _, metas = targets()
    empty = [
        InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    ] * 2
    losses = head.loss_by_feat(*head(inputs()), empty, metas, None)
    assert losses['loss_bbox'].item() == 0
    assert losses['loss_cls'] > 0


@pytest.mark.parametrize('assigner', [
    dict(type='POTOAssigner'),
    dict(type='One2OneAnchorAssigner'),
    dict(type='ForegroundLossAssigner'),
])
def test_other_assigners_plug_in(assigner):
    head = build_head(assigner=assigner)
    gts, ignores, metas = targets()
    losses = head.loss_by_feat(*head(inputs()), gts, metas, ignores)
    assert all(torch.isfinite(v) for v in losses.values())


def test_training_steps_decrease_losses():
    torch.manual_seed(0)
    head = build_head(with_3dmf=True, aux=True)
    gts, ignores, metas = targets()
    x = inputs()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    history = []
    for _ in range(12):
        losses = head.loss_by_feat(*head(x), gts, metas, ignores)
        total = sum(losses.values())
        assert torch.isfinite(total)
        history.append(total.item())
        opt.zero_grad()
        total.backward()
        opt.step()
    assert history[-1] < 0.7 * history[0]
