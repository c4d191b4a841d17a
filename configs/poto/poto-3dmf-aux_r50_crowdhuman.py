# POTO + 3DMF + Aux R50-FPN on CrowdHuman, the 30k recipe (16 images per
# batch), NMS-free, 500 detections per image.
_base_ = [
    '../_base_/models/poto-3dmf-aux_r50_fpn.py',
    '../_base_/datasets/crowdhuman.py',
    '../_base_/schedules/schedule_30k.py', '../_base_/default_runtime.py'
]
