# One-to-one baseline "Anchor" on COCO: each GT takes the single square
# anchor (4 x stride: 32..512) of highest IoU; NMS-free.
_base_ = '../poto/poto_r50_fpn_3x-ms_coco.py'

model = dict(
    train_cfg=dict(
        assigner=dict(
            _delete_=True, type='One2OneAnchorAssigner', anchor_scale=4.0)))
