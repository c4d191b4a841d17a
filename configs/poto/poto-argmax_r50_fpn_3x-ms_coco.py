# POTO on COCO with the Hungarian matching replaced by argmax (top-1).
_base_ = './poto_r50_fpn_3x-ms_coco.py'

model = dict(train_cfg=dict(assigner=dict(match='argmax')))
