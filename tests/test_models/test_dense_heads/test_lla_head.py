"""LLAHead (LLA.FCOS), LLARetinaHead (LLA.RetinaNet) and the reuse of the
assigner in an unmodified mmdet detector."""
import copy
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import register_all_modules
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData

import mmlla  # noqa: F401

register_all_modules(init_default_scope=True)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
IMG = 64
STRIDES = [8, 16, 32]
TEST_CFG = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                nms=dict(type='nms', iou_threshold=0.6), max_per_img=300)


def tiny_head(**kwargs):
    cfg = dict(
        type='LLAHead', num_classes=2, in_channels=8, feat_channels=16,
        stacked_convs=1, strides=STRIDES,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        train_cfg=dict(assigner=dict(type='LossAwareAssigner', topk=4)),
        test_cfg=TEST_CFG)
    cfg.update(kwargs)
    cfg['test_cfg'] = ConfigDict(cfg['test_cfg'])  # as built from a Config
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def feats(seed=0, channels=8, num_imgs=2):
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(num_imgs, channels, IMG // s, IMG // s, generator=g)
        for s in STRIDES)


def batch(with_ignore=True):
    gt = [
        InstanceData(bboxes=torch.tensor([[4., 4., 30., 60.],
                                          [28., 6., 56., 58.]]),
                     labels=torch.tensor([0, 1])),
        InstanceData(bboxes=torch.tensor([[10., 12., 40., 50.]]),
                     labels=torch.tensor([1])),
    ]
    ign = [
        InstanceData(bboxes=torch.tensor([[40., 40., 63., 63.]])
                     if with_ignore else torch.zeros(0, 4)),
        InstanceData(bboxes=torch.zeros(0, 4)),
    ]
    metas = [dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG),
                  scale_factor=(1., 1.))] * 2
    return gt, metas, ign


def test_forward_gives_pixel_distances_and_iou_logits():
    head = tiny_head()
    head.train()
    x = feats()
    cls, box, iou = head(x)
    assert [c.shape for c in cls] == [(2, 2, 8, 8), (2, 2, 4, 4),
                                      (2, 2, 2, 2)]
    assert [i.shape for i in iou] == [(2, 1, 8, 8), (2, 1, 4, 4),
                                      (2, 1, 2, 2)]
    assert not hasattr(head, 'conv_centerness')
    # ReLU(Scale(raw)) * stride, in pixels in training as in testing
    for level, stride in enumerate(STRIDES):
        head.scales[level].scale.data.fill_(0.5)
    cls, box, _ = head(x)
    for level, stride in enumerate(STRIDES):
        feat = x[level]
        for conv in head.reg_convs:
            feat = conv(feat)
        raw = head.conv_reg(feat) * 0.5
        torch.testing.assert_close(box[level], raw.clamp(min=0) * stride)
    head.eval()
    torch.testing.assert_close(head(x)[1][0], box[0])


def test_training_iterations_reduce_the_losses():
    head = tiny_head()
    head.train()
    x = feats()
    gt, metas, ign = batch()
    opt = torch.optim.SGD(head.parameters(), lr=0.01, momentum=0.9)
    totals = []
    for _ in range(6):
        losses = head.loss_by_feat(*head(x), gt, metas, ign)
        assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_iou'}
        total = sum(losses.values())
        assert all(torch.isfinite(v) for v in losses.values())
        assert all(v > 0 for v in losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert totals[-1] < 0.9 * totals[0], totals


def test_losses_follow_the_assignment():
    """The three losses recomputed by hand from the assigner's own output."""
    head = tiny_head()
    head.train()
    cls, box, iou = head(feats(1))
    gt, metas, ign = batch()
    losses = head.loss_by_feat(cls, box, iou, gt, metas, ign)

    flat = lambda maps, c: torch.cat(  # noqa: E731
        [m.permute(0, 2, 3, 1).reshape(2, -1, c) for m in maps], 1)
    priors = torch.cat(head.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls], device='cpu', with_stride=True))
    logits, dist, iou_l = flat(cls, 2), flat(box, 4), flat(iou, 1)[..., 0]
    xy = priors[:, :2]
    boxes = torch.cat([xy - dist[..., :2], xy + dist[..., 2:]], -1)
    focal, giou, bce, num_pos = 0., 0., 0., 0
    for i in range(2):
        res = head.assigner.assign(
            InstanceData(priors=priors, scores=logits[i].sigmoid().detach(),
                         bboxes=boxes[i].detach()), gt[i], ign[i])
        keep = res.gt_inds >= 0
        target = torch.zeros_like(logits[i])
        pos = res.gt_inds > 0
        target[pos, gt[i].labels[res.gt_inds[pos] - 1]] = 1
        p = logits[i].sigmoid()
        pt = torch.where(target == 1, p, 1 - p)
        a = torch.where(target == 1, 0.25, 0.75)
        fl = -a * (1 - pt)**2 * pt.log()
        focal = focal + fl[keep].sum()
        tgt_boxes = gt[i].bboxes[res.gt_inds[pos] - 1]
        ious = bbox_overlaps(boxes[i][pos], tgt_boxes, is_aligned=True)
        gious = bbox_overlaps(boxes[i][pos], tgt_boxes, mode='giou',
                              is_aligned=True)
        giou = giou + (1 - gious).sum()
        bce = bce + torch.nn.functional.binary_cross_entropy_with_logits(
            iou_l[i][pos], ious.detach(), reduction='sum')
        num_pos += int(pos.sum())
    assert num_pos > 0
    torch.testing.assert_close(losses['loss_cls'], focal / num_pos)
    torch.testing.assert_close(losses['loss_bbox'], 2.0 * giou / num_pos)
    torch.testing.assert_close(losses['loss_iou'], 0.5 * bce / num_pos)


def test_ignore_assigned_points_are_excluded_from_every_loss():
    head = tiny_head()
    head.train()
    x = feats(2)
    gt, metas, ign = batch()
    cls, box, iou = head(x)
    cls = [c.detach().requires_grad_() for c in cls]
    iou = [i.detach().requires_grad_() for i in iou]
    box = [b.detach() for b in box]
    losses = head.loss_by_feat(cls, box, iou, gt, metas, ign)
    sum(losses.values()).backward()

    priors = torch.cat(head.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls], device='cpu', with_stride=True))
    flat = lambda maps, c: torch.cat(  # noqa: E731
        [m.permute(0, 2, 3, 1).reshape(2, -1, c) for m in maps], 1)
    dist = flat(box, 4)
    boxes = torch.cat([priors[:, :2] - dist[..., :2],
                       priors[:, :2] + dist[..., 2:]], -1)
    labels, _, valid = head.get_targets(priors, flat(cls, 2).sigmoid(),
                                        boxes, gt, ign)
    ignored = ~valid
    assert ignored.sum() > 0 and ignored[1].sum() == 0
    # no gradient reaches the ignore-assigned points, background ones do
    grad = flat([c.grad for c in cls], 2).abs().sum(-1)
    assert (grad[ignored] == 0).all()
    background = valid & (labels == head.num_classes)
    assert (grad[background] > 0).all()
    assert (flat([i.grad for i in iou], 1)[..., 0][ignored] == 0).all()

    # raising the logits there (the ignore region keeps them: they only get
    # cheaper) leaves every loss unchanged; at background points it does not
    def bumped(mask):
        new = flat(cls, 2).detach().clone()
        new[mask] += 3.0
        out, start = [], 0
        for c in cls:
            n = c.shape[-2] * c.shape[-1]
            out.append(new[:, start:start + n].reshape(
                2, c.shape[-2], c.shape[-1], 2).permute(0, 3, 1, 2))
            start += n
        return head.loss_by_feat(out, box, [i.detach() for i in iou], gt,
                                 metas, ign)

    same = bumped(ignored)
    for k in losses:
        torch.testing.assert_close(same[k], losses[k].detach())
    other = bumped(background & (torch.rand(background.shape) < 0.2))
    assert not torch.allclose(other['loss_cls'], losses['loss_cls'])


def test_no_gt_and_only_ignore_images_give_finite_losses():
    head = tiny_head()
    head.train()
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    _, metas, ign = batch()
    losses = head.loss_by_feat(*head(feats(3)), [empty, empty], metas, ign)
    assert losses['loss_bbox'] == 0 and losses['loss_iou'] == 0
    assert losses['loss_cls'] > 0
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters()
               if p.grad is not None)


def test_predict_by_feat_uses_the_sqrt_score():
    head = tiny_head()
    head.eval()
    cls = [torch.full((1, 2, IMG // s, IMG // s), -9.0) for s in STRIDES]
    box = [torch.full((1, 4, IMG // s, IMG // s), 4.0) for s in STRIDES]
    iou = [torch.zeros(1, 1, IMG // s, IMG // s) for s in STRIDES]
    cls[0][0, 1, 2, 3] = 0.5  # one point of P3: (x, y) = (28, 20), class 1
    iou[0][0, 0, 2, 3] = -1.0
    cls[1][0, 0, 1, 1] = -2.9  # sigmoid 0.052 > 0.05: kept; (24, 24)
    cls[2][0, 0, 0, 0] = -3.0  # sigmoid 0.047 < 0.05: dropped
    meta = [dict(img_shape=(IMG, IMG), scale_factor=(1., 1.))]
    res = head.predict_by_feat(cls, box, iou, batch_img_metas=meta)[0]
    assert len(res) == 2
    sig = torch.sigmoid
    want = torch.tensor([(sig(torch.tensor(0.5)) * sig(torch.tensor(-1.)))
                         .sqrt(), (sig(torch.tensor(-2.9)) * 0.5).sqrt()])
    torch.testing.assert_close(res.scores, want)
    assert res.labels.tolist() == [1, 0]
    torch.testing.assert_close(
        res.bboxes, torch.tensor([[24., 16., 32., 24.], [20., 20., 28., 28.]]))


def test_predict_caps_per_level_and_per_image():
    head = tiny_head(test_cfg=dict(TEST_CFG, nms_pre=5, max_per_img=7,
                                   nms=dict(type='nms', iou_threshold=1.0)))
    head.eval()
    g = torch.Generator().manual_seed(0)
    cls = [torch.rand(2, 2, IMG // s, IMG // s, generator=g) + 1
           for s in STRIDES]
    box = [torch.rand(2, 4, IMG // s, IMG // s, generator=g) * 20 + 1
           for s in STRIDES]
    iou = [torch.zeros(2, 1, IMG // s, IMG // s) for s in STRIDES]
    metas = [dict(img_shape=(IMG, IMG), scale_factor=(1., 1.))] * 2
    results = head.predict_by_feat(cls, box, iou, batch_img_metas=metas)
    assert [len(r) for r in results] == [7, 7]
    head.test_cfg = ConfigDict(dict(TEST_CFG, nms_pre=5, max_per_img=300,
                                    nms=dict(type='nms', iou_threshold=1.0)))
    results = head.predict_by_feat(cls, box, iou, batch_img_metas=metas)
    assert [len(r) for r in results] == [15, 15]  # 5 per level, 3 levels
    assert results[0].bboxes.shape == (15, 4)


def test_lla_retina_head_trains_with_anchor_priors():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/lla/lla-retinanet_tiny_synthetic.py'))
    head_cfg = copy.deepcopy(cfg.model.bbox_head)
    head_cfg.update(
        num_classes=2, in_channels=8, feat_channels=16, stacked_convs=1,
        train_cfg=cfg.model.train_cfg, test_cfg=cfg.model.test_cfg)
    head_cfg.anchor_generator.strides = STRIDES
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()
    head.train()
    assert head.assigner.prior_type == 'anchor'
    x = feats(4)
    gt, metas, ign = batch()
    opt = torch.optim.SGD(head.parameters(), lr=0.01, momentum=0.9)
    totals = []
    for _ in range(5):
        losses = head.loss_by_feat(*head(x), gt, metas, ign)
        total = sum(losses.values())
        assert torch.isfinite(total) and losses['loss_bbox'] > 0
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert totals[-1] < totals[0]
    head.eval()
    res = head.predict_by_feat(*head(x), batch_img_metas=metas)
    assert len(res) == 2 and res[0].bboxes.shape[1] == 4


def test_assigner_reused_in_unmodified_mmdet_yolox():
    """The reuse config changes only the assigner of mmdet's YOLOX-S; a
    narrowed copy of that model trains for a few iterations."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/lla/yolox-s_lla-assigner_8xb8-300e_coco.py'))
    assert cfg.model.train_cfg.assigner == dict(type='LossAwareAssigner')
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
    gt, metas, _ = batch(with_ignore=False)
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
