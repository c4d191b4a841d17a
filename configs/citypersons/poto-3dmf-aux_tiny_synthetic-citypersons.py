# A tiny twin of poto-3dmf-aux_r50_citypersons.py that trains on
# synthetic CityPersons-format crowds on a CPU in minutes.
_base_ = [
    '../_base_/models/poto-3dmf-aux_r50_fpn.py',
    '../_base_/tiny_synthetic_citypersons.py'
]

model = dict(
    backbone=_base_.tiny_backbone,
    neck=_base_.tiny_neck,
    bbox_head=_base_.tiny_head)
