# DeFCN's POTO + 3DMF row on CrowdHuman
# (poto.res50.fpn.crowdhuman.800size.30k.3dmf): 30k iterations at 16 images
# per batch, NMS-free, 500 detections per image.
_base_ = [
    '../_base_/models/poto-3dmf_r50_fpn.py',
    '../_base_/datasets/crowdhuman.py',
    '../_base_/schedules/schedule_30k.py', '../_base_/default_runtime.py'
]
