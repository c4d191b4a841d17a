# LLA.FCOS R50-FPN (P3-P7) for one class (person), as the LLA repository's
# CrowdHuman config: the backbone / FPN / input of fcos_r50_fpn.py, FCOS
# towers (bias + GN) with an IoU branch on the regression tower instead of
# centerness, points at offset 0 (cvpods' default shift, kept by LLA), and
# loss-aware assignment. Focal loss over every point not taken by an ignore
# region, GIoU x2 and IoU BCE x0.5 on the positives. Inference: per level top
# 1000 above 0.05, score sqrt(cls * iou), NMS 0.6, 300 detections per image.
_base_ = './fcos_r50_fpn.py'

model = dict(
    bbox_head=dict(
        _delete_=True,
        type='LLAHead',
        num_classes=1,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        conv_bias=True,
        prior_offset=0.0,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_iou=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.5)),
    # LLA's assigner arguments, stated once: LLA.RetinaNet and the
    # CityPersons LLA rows inherit them from here. The reuse configs of
    # configs/lla/ (mmdet's YOLOX, RTMDet, DDOD with this assigner) inherit
    # mmdet's configs instead and take the same values as the assigner's
    # defaults.
    train_cfg=dict(
        assigner=dict(
            _delete_=True,
            type='LossAwareAssigner',
            topk=10,
            reg_cost=1.5,
            alpha=0.25,
            gamma=2.0,
            prior_type='point')),
    test_cfg=dict(max_per_img=300))
