# LLA.FCOS R50-FPN (P3-P7) for one class (person): the FCOS model with the
# LLAHead (GN, norm-on-bbox, an IoU branch on the regression tower instead of
# centerness) and loss-aware assignment; focal + GIoU x2 + IoU BCE x0.5.
# Inference (inherited): per level top 1000 above 0.05, score
# sqrt(cls * iou), NMS 0.6, 300 per image.
_base_ = './fcos_r50_fpn.py'

model = dict(
    bbox_head=dict(
        type='LLAHead',
        # the assigner decides the positives: FCOS's centre sampling unused
        center_sampling=False,
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
