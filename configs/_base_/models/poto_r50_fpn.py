# POTO (DeFCN) R50-FPN (P3-P7) for one class: FCOS towers with GN and
# norm-on-bbox, no centerness, prediction-aware one-to-one assignment
# (alpha 0.8, the whole GT box as prior), focal loss + GIoU x2, NMS-free
# inference (500 detections per image, the CrowdHuman setting).
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
        norm_on_bbox=True,
        with_3dmf=False,
        aux_loss=None,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            activated=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            type='POTOAssigner',
            alpha=0.8,
            center_sampling_radius=0.0,
            match='hungarian')),
    test_cfg=dict(
        _delete_=True, nms_pre=1000, score_thr=0.05, nms=None,
        max_per_img=500))
