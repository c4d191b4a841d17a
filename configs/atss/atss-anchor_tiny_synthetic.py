# A tiny twin of atss-anchor_r50_crowdhuman.py (mmdet's anchor-based ATSS)
# that trains on synthetic crowds on a CPU in minutes.
_base_ = [
    '../_base_/models/atss-anchor_r50_fpn.py', '../_base_/tiny_synthetic.py'
]

model = dict(
    backbone=_base_.tiny_backbone,
    neck=_base_.tiny_neck,
    bbox_head=_base_.tiny_head)
