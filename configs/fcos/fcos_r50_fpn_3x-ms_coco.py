# FCOS R50-FPN on COCO (one-to-many, NMS 0.6, 100 detections), 3x +
# multi-scale: GN head, norm-on-bbox, centerness on the regression tower,
# centre sampling 1.5, GIoU x2. The COCO data and schedule come from the POTO
# COCO root; only the head (and its train/test settings) differ.
_base_ = '../poto/poto_r50_fpn_3x-ms_coco.py'

model = dict(
    bbox_head=dict(
        _delete_=True,
        type='FCOSHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        norm_on_bbox=True,
        centerness_on_reg=True,
        center_sampling=True,
        center_sample_radius=1.5,
        conv_bias=True,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(_delete_=True),
    test_cfg=dict(
        _delete_=True,
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100))
