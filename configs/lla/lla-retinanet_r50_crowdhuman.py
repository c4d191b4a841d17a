# LLA.RetinaNet R50-FPN on CrowdHuman, the 30k recipe (16 images per batch).
_base_ = [
    '../_base_/models/lla-retinanet_r50_fpn.py',
    '../_base_/datasets/crowdhuman.py', '../_base_/schedules/schedule_30k.py',
    '../_base_/default_runtime.py'
]
