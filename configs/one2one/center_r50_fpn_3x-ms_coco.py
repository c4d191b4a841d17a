# DeFCN's one-to-one baseline "Center" on COCO
# (center.res50.fpn.coco.800size.3x_ms): the POTO COCO row whose assigner
# takes, per level, the point closest to the GT centre within the FCOS scale
# range; conflicts to the smallest GT; NMS-free.
_base_ = '../poto/poto_r50_fpn_3x-ms_coco.py'

model = dict(
    train_cfg=dict(
        assigner=dict(_delete_=True, type='One2OneCenterAssigner')))
