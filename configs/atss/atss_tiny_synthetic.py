# A tiny twin of atss_r50_crowdhuman.py (DeFCN's point ATSS) that trains on
# synthetic crowds on a CPU in minutes.
_base_ = ['../_base_/models/atss_r50_fpn.py', '../_base_/tiny_synthetic.py']

model = dict(
    backbone=_base_.tiny_backbone,
    neck=_base_.tiny_neck,
    bbox_head=_base_.tiny_head)
