# DeFCN's ATSS row (playground atss.res50.fpn.crowdhuman.800size.30k): the
# FCOS row's point head and inference, with ATSS picking the positives (top
# 9 points per level by centre distance, IoU >= mean + std of those
# candidates, centre inside the box; the IoU is that of a square anchor of
# side 8 x stride centred on each point, used for nothing else) and GIoU x2.
_base_ = './fcos_r50_fpn.py'

model = dict(
    bbox_head=dict(loss_bbox=dict(loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            _delete_=True,
            type='PointATSSAssigner',
            topk=9,
            anchor_scale=8.0)))
