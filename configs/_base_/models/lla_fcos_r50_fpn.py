# LLA.FCOS R50-FPN (P3-P7) for one class (person): the FCOS model with the
# LLAHead (GN, norm-on-bbox, an IoU branch on the regression tower instead of
# centerness) and loss-aware assignment; focal + GIoU x2 + IoU BCE x0.5.
# Inference (inherited): per level top 1000 above 0.05, score
# sqrt(cls * iou), NMS 0.6, 300 per image.
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
        norm_on_bbox=True,
        centerness_on_reg=True,
        conv_bias=True,
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_iou=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.5)),
    train_cfg=dict(
        assigner=dict(
            type='LossAwareAssigner',
            topk=10,
            reg_cost=1.5,
            alpha=0.25,
            gamma=2.0,
            prior_type='point')))
