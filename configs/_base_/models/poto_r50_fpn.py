# DeFCN's POTO row (playground poto.res50.fpn.crowdhuman.800size.30k) for one
# class: the backbone / FPN / input of fcos_r50_fpn.py, FCOS towers (bias +
# GN) without centerness, points at offset 0.5, prediction-aware one-to-one
# assignment (alpha 0.8; on CrowdHuman the prior is the whole GT box, radius
# 0), focal loss on the logits + GIoU x2, NMS-free inference (top 1000 per
# level above 0.05, then the best 500 per image, the CrowdHuman setting).
# The POTOHead's loss_cls has no `activated` key: the head sets it (logits
# without 3DMF, probabilities with it). filter_cfg is stated here, unused
# until a row sets with_3dmf=True, so that the 3DMF rows are `with_3dmf=True`
# and the "w/o GN" rows `filter_cfg=dict(with_norm=False)`.
_base_ = './fcos_r50_fpn.py'

model = dict(
    bbox_head=dict(
        _delete_=True,
        type='POTOHead',
        num_classes=1,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        conv_bias=True,
        prior_offset=0.5,
        with_3dmf=False,
        filter_cfg=dict(
            type='MaxFiltering3D', kernel_size=3, tau=2, with_norm=True),
        aux_loss=None,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            _delete_=True,
            type='POTOAssigner',
            alpha=0.8,
            center_sampling_radius=0.0,
            match='hungarian')),
    test_cfg=dict(nms=None))

# The auxiliary one-to-many loss (the "+ Aux" rows), stated once here: the
# CrowdHuman aux base and the COCO aux row switch it on with
# `aux_loss=dict(_delete_=True, **_base_.poto_aux_loss)` (the head's default
# is None, which a dict cannot merge into) and
# `aux_assigner=_base_.poto_aux_assigner`. Focal loss on the unfiltered
# logits, weight 1; per GT the 9 best points per level by quality (alpha
# 0.8), threshold mean + std, inside the box.
poto_aux_loss = dict(
    type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
poto_aux_assigner = dict(type='POTOAuxAssigner', alpha=0.8, topk=9)
