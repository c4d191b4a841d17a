"""Head behaviour that mutation testing (docs/mutation_testing.md) showed no
other test pinned down, each checked against values written out here from
docs/algorithms.md, not computed by the heads' own helpers (LLARetinaHead's
are in test_lla_retina_head.py)."""
import math

import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmlla  # noqa: F401  (registers the heads)
from head_cases import (GN4, IMG, STRIDES, close, crowd, flat_levels,
                        focal_from_logits, grid_points, sizes)

NUM_CLASSES = 2


def sig(v):
    return 1 / (1 + math.exp(-v))


def build(type_, nms=None, max_per_img=7, **kwargs):
    torch.manual_seed(0)
    test_cfg = ConfigDict(nms_pre=1000, score_thr=0.05, nms=nms,
                          max_per_img=max_per_img)
    head = MODELS.build(dict(
        type=type_, num_classes=NUM_CLASSES, in_channels=8, feat_channels=8,
        stacked_convs=1, strides=STRIDES, norm_cfg=GN4, test_cfg=test_cfg,
        **kwargs))
    head.init_weights()
    return head


def levels(flat):
    """(1, A, K) -> per level (1, K, H, W)."""
    out, start = [], 0
    for h, w in sizes():
        out.append(flat[:, start:start + h * w].reshape(1, h, w, -1)
                   .permute(0, 3, 1, 2).contiguous())
        start += h * w
    return out


def empty_maps(num_imgs=1, box_value=2.):
    cls = [torch.full((num_imgs, NUM_CLASSES, h, w), -9.) for h, w in sizes()]
    box = [torch.full((num_imgs, 4, h, w), box_value) for h, w in sizes()]
    return cls, box


def two_overlapping(cls, box):
    """Two same-class P3 boxes of IoU 0.78: NMS at 0.6 keeps one."""
    cls[0][0, 0, 4, 2] = 2.0
    box[0][0, :, 4, 2] = torch.tensor([12., 12., 12., 12.])  # [8,24,32,48]
    cls[0][0, 0, 4, 3] = 1.0
    box[0][0, :, 4, 3] = torch.tensor([18., 12., 6., 12.])  # [10,24,34,48]


# ------------------------------------------------------------- DeFCN FCOS
def test_defcn_fcos_forward_distances_and_centerness_branch():
    """(l, t, r, b) = ReLU(scale * conv(x)) * stride and the centerness
    logit on the regression tower (centerness_on_reg), or on the class
    tower when switched off."""
    for on_reg in (True, False):
        head = build('DeFCNFCOSHead', centerness_on_reg=on_reg)
        # scales start at 1; the centerness predictor is one 3x3 conv
        assert [s.scale.item() for s in head.scales] == [1.0] * len(STRIDES)
        assert head.conv_centerness.weight.shape == (1, 8, 3, 3)
        with torch.no_grad():
            for i, s in enumerate(head.scales):
                s.scale.fill_(1.0 + 0.5 * i)
            g = torch.Generator().manual_seed(3)
            head.conv_reg.weight.copy_(
                torch.randn(head.conv_reg.weight.shape, generator=g) * 0.3)
        x = [torch.randn(1, 8, h, w, generator=g) for h, w in sizes()]
        cls, box, ctr = head(x)
        assert len(cls) == len(box) == len(ctr) == len(STRIDES)
        for lvl, (feat, stride) in enumerate(zip(x, STRIDES)):
            cls_feat, reg_feat = feat, feat
            for conv in head.cls_convs:
                cls_feat = conv(cls_feat)
            for conv in head.reg_convs:
                reg_feat = conv(reg_feat)
            torch.testing.assert_close(cls[lvl], head.conv_cls(cls_feat))
            raw = head.conv_reg(reg_feat) * (1.0 + 0.5 * lvl)
            torch.testing.assert_close(box[lvl], raw.clamp(min=0) * stride)
            assert (box[lvl] > 0).any() and (raw < 0).any()
            tower = reg_feat if on_reg else cls_feat
            torch.testing.assert_close(ctr[lvl],
                                       head.conv_centerness(tower))
            assert ctr[lvl].shape == (1, 1) + tuple(feat.shape[-2:])
    # without train_cfg.assigner: DeFCN's FCOS assigner (centre square 1.5)
    head = build('DeFCNFCOSHead', train_cfg=dict(debug=False))
    assert type(head.assigner).__name__ == 'FCOSStyleAssigner'
    assert head.assigner.center_sampling_radius == 1.5


def test_defcn_fcos_focal_normaliser_is_max_1_positives():
    """No GT: every point is a negative and the focal sum is divided by
    max(1, 0) = 1."""
    head = build('DeFCNFCOSHead', train_cfg=dict(assigner=dict(
        type='FCOSStyleAssigner', center_sampling_radius=1.5,
        regress_ranges=((-1, 16), (16, 32), (32, 1e8)))))
    points = grid_points(0.5)
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(1, len(points), NUM_CLASSES, generator=g)
    cls = levels(logits)
    box = [torch.full((1, 4, h, w), 3.) for h, w in sizes()]
    ctr = [torch.full((1, 1, h, w), 0.5) for h, w in sizes()]
    gts = [InstanceData(bboxes=torch.zeros(0, 4),
                        labels=torch.zeros(0, dtype=torch.long))]
    losses = head.loss_by_feat(cls, box, ctr, gts, crowd(1)[2])
    want = focal_from_logits(flat_levels(cls)[0],
                             torch.zeros(len(points), NUM_CLASSES)).sum()
    close(losses['loss_cls'], want)
    close(losses['loss_bbox'], 0.)
    close(losses['loss_centerness'], 0.)


# ------------------------------------------------------------ POTO inference
def test_poto_predict_does_not_rescale_by_default():
    head = build('POTOHead')
    head.eval()
    cls, box = empty_maps()
    cls[1][0, 0, 1, 1] = 3.0   # P4 point (24, 24): box [22, 22, 26, 26]
    metas = [dict(img_shape=(IMG, IMG), ori_shape=(128, 128),
                  scale_factor=(0.5, 0.5))]
    res = head.predict_by_feat(cls, box, None, batch_img_metas=metas)[0]
    close(res.bboxes, [[22., 22., 26., 26.]])
    res = head.predict_by_feat(cls, box, None, batch_img_metas=metas,
                               rescale=True)[0]
    close(res.bboxes, [[44., 44., 52., 52.]])


def test_poto_predict_with_a_list_of_none_filters():
    """What forward returns without 3DMF: one None per level."""
    head = build('POTOHead')
    head.eval()
    cls, box = empty_maps()
    cls[1][0, 0, 1, 1] = 3.0
    cls[2][0, 1, 0, 1] = 1.0   # P5 point (48, 16): box [46, 14, 50, 18]
    res = head.predict_by_feat(cls, box, [None] * len(STRIDES),
                               batch_img_metas=crowd(1)[2])[0]
    close(res.scores, [sig(3.0), sig(1.0)])
    assert res.labels.tolist() == [0, 1]
    close(res.bboxes, [[22., 22., 26., 26.], [46., 14., 50., 18.]])


def test_poto_predict_uses_the_given_cfg_and_with_nms():
    head = build('POTOHead', nms=dict(type='nms', iou_threshold=0.6),
                 max_per_img=10)
    head.eval()
    cls, box = empty_maps()
    two_overlapping(cls, box)
    metas = crowd(1)[2]
    assert len(head.predict_by_feat(cls, box, None,
                                    batch_img_metas=metas)[0]) == 1
    # with_nms=False skips the NMS of test_cfg
    res = head.predict_by_feat(cls, box, None, batch_img_metas=metas,
                               with_nms=False)[0]
    close(res.scores, [sig(2.0), sig(1.0)])
    # an explicit cfg replaces test_cfg (here: no NMS, the best two)
    cls[2][0, 1, 0, 1] = 0.5   # P5 point (48, 16), third best
    cfg = ConfigDict(nms_pre=1000, score_thr=0.05, nms=None, max_per_img=2)
    res = head.predict_by_feat(cls, box, None, batch_img_metas=metas,
                               cfg=cfg)[0]
    close(res.bboxes, [[8., 24., 32., 48.], [10., 24., 34., 48.]])


def test_poto_anchor_row_inference_decodes_square_anchors():
    """Anchor row: the deltas are decoded on the square anchor of side
    4 x stride of each point (the priors must carry their strides)."""
    head = build('POTOHead', anchor_scale=4.0)
    head.eval()
    cls, box = empty_maps(box_value=0.)
    cls[1][0, 0, 1, 1] = 3.0   # P4 point (24, 24), anchor side 64
    # dx, dy shift the centre by 0.125 * 64 = 8; log(0.25): side 16
    box[1][0, :, 1, 1] = torch.tensor([0.125, -0.125, math.log(0.25),
                                       math.log(0.5)])
    res = head.predict_by_feat(cls, box, None,
                               batch_img_metas=crowd(1)[2])[0]
    # centre (32, 16), w 16, h 32
    close(res.bboxes, [[24., 0., 40., 32.]])
    close(res.scores, [sig(3.0)])


def test_poto_forward_without_3dmf_gives_one_none_per_level():
    head = build('POTOHead')
    g = torch.Generator().manual_seed(6)
    x = [torch.randn(1, 8, h, w, generator=g) for h, w in sizes()]
    cls, box, filt = head(x)
    assert len(cls) == len(box) == len(STRIDES)
    assert filt == [None] * len(STRIDES)


def test_poto_normalisers_are_max_1_positives_without_gts():
    """No GT: the main and the auxiliary focal sums over every point are
    each divided by max(1, 0) = 1."""
    focal = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                 loss_weight=1.0)
    head = build('POTOHead', aux_loss=focal,
                 train_cfg=dict(assigner=dict(type='POTOAssigner')))
    points = grid_points(0.5)
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(1, len(points), NUM_CLASSES, generator=g)
    cls = levels(logits)
    box = [torch.full((1, 4, h, w), 3.) for h, w in sizes()]
    gts = [InstanceData(bboxes=torch.zeros(0, 4),
                        labels=torch.zeros(0, dtype=torch.long))]
    losses = head.loss_by_feat(cls, box, [None] * len(STRIDES), gts,
                               crowd(1)[2])
    want = focal_from_logits(logits[0],
                             torch.zeros(len(points), NUM_CLASSES)).sum()
    close(losses['loss_cls'], want)
    close(losses['loss_aux'], want)
    close(losses['loss_bbox'], 0.)


# ------------------------------------------------------ shared inference
def test_boxes_past_the_right_and_bottom_edges_are_clipped():
    head = build('POTOHead')
    head.eval()
    cls, box = empty_maps()
    cls[0][0, 0, 7, 7] = 3.0   # P3 point (60, 60): box [50, 52, 80, 70]
    box[0][0, :, 7, 7] = torch.tensor([10., 8., 20., 10.])
    res = head.predict_by_feat(cls, box, None,
                               batch_img_metas=crowd(1)[2])[0]
    close(res.bboxes, [[50., 52., 64., 64.]])


def test_a_test_cfg_without_score_thr_keeps_every_point():
    """Missing ``score_thr``: 0, every positive score passes."""
    head = build('POTOHead')
    head.eval()
    cls, box = empty_maps()
    num_points = sum(h * w for h, w in sizes())
    cfg = ConfigDict(nms_pre=1000, nms=None, max_per_img=10000)
    res = head.predict_by_feat(cls, box, None, batch_img_metas=crowd(1)[2],
                               cfg=cfg)[0]
    assert len(res) == num_points * NUM_CLASSES
    close(res.scores, [sig(-9.)] * (num_points * NUM_CLASSES))


# ------------------------------------------------------------------- LLA
def lla_head(topk=1, **kwargs):
    torch.manual_seed(0)
    head = MODELS.build(dict(
        type='LLAHead', num_classes=NUM_CLASSES, in_channels=8,
        feat_channels=16, stacked_convs=1, strides=STRIDES, norm_cfg=GN4,
        train_cfg=dict(assigner=dict(type='LossAwareAssigner', topk=topk)),
        test_cfg=ConfigDict(nms_pre=1000, score_thr=0.05,
                            nms=dict(type='nms', iou_threshold=0.6),
                            max_per_img=300), **kwargs))
    head.init_weights()
    return head


def test_lla_single_positive_gets_its_giou_loss():
    """topk=1 and one GT: exactly one positive, whose GIoU loss (weight 2)
    over num_fg = 1 is the whole loss_bbox."""
    head = lla_head(topk=1)
    gt = InstanceData(bboxes=torch.tensor([[4., 4., 30., 60.]]),
                      labels=torch.tensor([1]))
    points = grid_points(0.0)   # LLA: offset 0
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(1, len(points), NUM_CLASSES, generator=g)
    # every point predicts the same box overlapping the GT
    pred = torch.tensor([6., 10., 34., 50.])
    dist = torch.cat([points[:, :2] - pred[:2], pred[2:] - points[:, :2]],
                     -1).clamp(min=0)[None]
    ious = torch.zeros(1, len(points), 1)

    losses = head.loss_by_feat(levels(logits), levels(dist), levels(ious),
                               [gt], crowd(1)[2], None)
    boxes = torch.cat([points[:, :2] - dist[0, :, :2],
                       points[:, :2] + dist[0, :, 2:]], -1)
    res = head.assigner.assign(
        InstanceData(priors=points, scores=logits[0].sigmoid(),
                     bboxes=boxes), gt)
    pos = (res.gt_inds > 0).nonzero()[:, 0]
    assert len(pos) == 1
    b = boxes[pos[0]].tolist()
    g_ = gt.bboxes[0].tolist()
    inter = max(0., min(b[2], g_[2]) - max(b[0], g_[0])) * max(
        0., min(b[3], g_[3]) - max(b[1], g_[1]))
    union = ((b[2] - b[0]) * (b[3] - b[1]) +
             (g_[2] - g_[0]) * (g_[3] - g_[1]) - inter)
    hull = (max(b[2], g_[2]) - min(b[0], g_[0])) * (
        max(b[3], g_[3]) - min(b[1], g_[1]))
    giou = inter / union - (hull - union) / hull
    assert 0 < inter / union < 1
    close(losses['loss_bbox'], 2.0 * (1 - giou))


def test_lla_forward_iou_branch_scale_and_default_assigner():
    """LLA.FCOS: distances ReLU(1.0 * conv(x)) * stride (scales start at
    1), a 1-channel 3x3 IoU conv on the regression tower; without
    ``train_cfg.assigner`` the LossAwareAssigner of docs/algorithms.md
    (topk 10, reg_cost 1.5, alpha 0.25, gamma 2)."""
    head = lla_head()
    with torch.no_grad():
        g = torch.Generator().manual_seed(10)
        head.conv_reg.weight.copy_(
            torch.randn(head.conv_reg.weight.shape, generator=g) * 0.3)
        head.conv_iou.weight.copy_(
            torch.randn(head.conv_iou.weight.shape, generator=g) * 0.3)
    g = torch.Generator().manual_seed(11)
    x = [torch.randn(1, 8, h, w, generator=g) for h, w in sizes()]
    cls, box, iou = head(x)
    for lvl, (feat, stride) in enumerate(zip(x, STRIDES)):
        reg_feat = feat
        for conv in head.reg_convs:
            reg_feat = conv(reg_feat)
        raw = head.conv_reg(reg_feat)
        torch.testing.assert_close(box[lvl], raw.clamp(min=0) * stride)
        # the IoU logit, written out as a 3x3 'same' correlation
        w, b = head.conv_iou.weight, head.conv_iou.bias
        assert w.shape == (1, 16, 3, 3)
        padded = torch.nn.functional.pad(reg_feat, (1, 1, 1, 1))
        h_, w_ = reg_feat.shape[-2:]
        want = torch.zeros(1, 1, h_, w_)
        for dy in range(3):
            for dx in range(3):
                want += (padded[:, :, dy:dy + h_, dx:dx + w_] *
                         w[0, :, dy, dx][None, :, None, None]).sum(
                             1, keepdim=True)
        torch.testing.assert_close(iou[lvl], want + b[0], rtol=1e-4,
                                   atol=1e-5)
    torch.manual_seed(0)
    default = MODELS.build(dict(
        type='LLAHead', num_classes=NUM_CLASSES, in_channels=8,
        feat_channels=16, stacked_convs=1, strides=STRIDES, norm_cfg=GN4,
        train_cfg=dict(debug=False)))  # no 'assigner' key
    a = default.assigner
    assert type(a).__name__ == 'LossAwareAssigner'
    assert (a.topk, a.reg_cost, a.alpha, a.gamma) == (10, 1.5, 0.25, 2.0)


def test_lla_normaliser_is_max_1_without_gts():
    """No GT and no ignore region: num_fg = 0, the focal sum over every
    point is divided by 1 and the GIoU / IoU losses are 0."""
    head = lla_head(topk=4)
    points = grid_points(0.0)
    g = torch.Generator().manual_seed(12)
    logits = torch.randn(1, len(points), NUM_CLASSES, generator=g)
    cls = levels(logits)
    box = [torch.full((1, 4, h, w), 3.) for h, w in sizes()]
    iou = [torch.full((1, 1, h, w), 0.5) for h, w in sizes()]
    gts = [InstanceData(bboxes=torch.zeros(0, 4),
                        labels=torch.zeros(0, dtype=torch.long))]
    losses = head.loss_by_feat(cls, box, iou, gts, crowd(1)[2], None)
    want = focal_from_logits(logits[0],
                             torch.zeros(len(points), NUM_CLASSES)).sum()
    close(losses['loss_cls'], want)
    for key in losses:
        if key != 'loss_cls':
            close(losses[key], 0.)


def test_a_test_cfg_without_nms_pre_keeps_every_point():
    """No ``nms_pre`` (or a non-positive one) means no per-level cap: every
    point above the threshold is kept (mmdet's filter_scores_and_topk would
    drop the last one of each level with -1)."""
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict
    head = MODELS.build(dict(
        type='POTOHead', num_classes=1, in_channels=8, feat_channels=8,
        stacked_convs=1, strides=(8, 16, 32),
        norm_cfg=dict(type='GN', num_groups=4),
        test_cfg=ConfigDict(score_thr=0.05, nms=None, max_per_img=1000)))
    head.eval()
    sizes = [(8, 8), (4, 4), (2, 2)]
    cls = [torch.full((1, 1, h, w), 2.0) for h, w in sizes]
    box = [torch.full((1, 4, h, w), 1.0) for h, w in sizes]
    meta = [dict(img_shape=(64, 64), ori_shape=(64, 64),
                 scale_factor=(1., 1.))]
    res = head.predict_by_feat(cls, box, None, batch_img_metas=meta)[0]
    assert len(res) == 64 + 16 + 4
    head.test_cfg.nms_pre = -1
    res = head.predict_by_feat(cls, box, None, batch_img_metas=meta)[0]
    assert len(res) == 64 + 16 + 4
