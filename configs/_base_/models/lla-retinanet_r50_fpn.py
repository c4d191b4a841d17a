# LLA.RetinaNet R50-FPN (P3-P7) for one class (person): ours, in the LLA
# paper only (the reference code has no such config). RetinaNet with one
# square anchor (8 x stride) per location, anchors centred at offset 0 like
# LLA's points, trained with the loss-aware assignment of lla_fcos_r50_fpn.py
# on the anchors (their centres are the points of the in-box rule). mmdet's
# RetinaHead hands its assigner the anchors only, so the head is
# LLARetinaHead: RetinaHead's layers, anchors, losses and inference, with the
# detached predictions passed to the assigner. Focal loss, GIoU x2 on the
# decoded boxes; LLA's inference settings (NMS 0.6, 300 per image).
_base_ = './lla_fcos_r50_fpn.py'

model = dict(
    type='RetinaNet',
    bbox_head=dict(
        _delete_=True,
        type='LLARetinaHead',
        num_classes=1,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=8,
            scales_per_octave=1,
            ratios=[1.0],
            strides=[8, 16, 32, 64, 128],
            center_offset=0.0),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_decoded_bbox=True,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(prior_type='anchor'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False))
