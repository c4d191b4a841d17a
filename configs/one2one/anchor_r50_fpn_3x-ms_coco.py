# DeFCN's one-to-one baseline "Anchor" on COCO
# (anchor.res50.fpn.coco.800size.3x_ms): the POTO COCO row whose head
# regresses box deltas of one square anchor (4 x stride: 32..512) per point
# and whose assigner gives each GT the anchor of highest IoU; NMS-free.
_base_ = '../poto/poto_r50_fpn_3x-ms_coco.py'

model = dict(
    bbox_head=dict(anchor_scale=4.0),
    train_cfg=dict(
        assigner=dict(
            _delete_=True, type='One2OneAnchorAssigner', anchor_scale=4.0)))
