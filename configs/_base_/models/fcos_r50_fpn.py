# DeFCN's FCOS row (playground fcos.res50.fpn.crowdhuman.800size.30k) for one
# class (person), and the backbone / FPN / input every R50 row shares.
# - Backbone: the MSRA caffe-style ResNet-50 (detectron2's R-50.pkl), stride
#   in the 1x1 conv, BN statistics and affine frozen, stem + first stage
#   frozen; BGR input, caffe mean, std 1.
# - FPN P3-P7: P6 from P5 (not C5), ReLU before P7; convs initialised as
#   cvpods' c2_xavier_fill (mmengine's Caffe2Xavier: kaiming_uniform a=1,
#   bias 0) instead of mmdet's default Xavier.
# - Head: FCOS towers (4 convs with bias + GN), centerness on the regression
#   tower, distances ReLU(scale * conv) * stride, points at offset 0.5;
#   focal loss, GIoU x1 weighted by the centerness targets, centerness BCE.
#   The positives come from the assigner: centre square 1.5 x stride inside
#   the box, FCOS scale ranges, smallest GT wins.
# - Inference: per level top 1000 above 0.05, score sqrt(cls * ctr), NMS 0.6,
#   500 detections per image (DeFCN's CrowdHuman setting).
model = dict(
    type='FCOS',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[103.530, 116.280, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='caffe',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet50_caffe')),
    neck=dict(
        type='FPN',
        in_channels=[512, 1024, 2048],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        num_outs=5,
        init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')),
    bbox_head=dict(
        type='DeFCNFCOSHead',
        num_classes=1,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        conv_bias=True,
        norm_on_bbox=True,
        centerness_on_reg=True,
        prior_offset=0.5,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type='FCOSStyleAssigner', center_sampling_radius=1.5)),
    test_cfg=dict(
        nms_pre=1000,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=500))
