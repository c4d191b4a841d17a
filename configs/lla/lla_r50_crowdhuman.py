# LLA.FCOS R50-FPN on CrowdHuman, the 30k recipe (16 images per batch:
# `tools/dist_train.sh configs/lla/lla_r50_crowdhuman.py 8`).
_base_ = [
    '../_base_/models/lla_fcos_r50_fpn.py', '../_base_/datasets/crowdhuman.py',
    '../_base_/schedules/schedule_30k.py', '../_base_/default_runtime.py'
]
