# One-to-one baseline "Center" on COCO: per level the point closest to the GT
# centre, within the FCOS scale ranges; conflicts to the smallest GT.
_base_ = '../poto/poto_r50_fpn_3x-ms_coco.py'

model = dict(
    train_cfg=dict(
        assigner=dict(_delete_=True, type='One2OneCenterAssigner')))
