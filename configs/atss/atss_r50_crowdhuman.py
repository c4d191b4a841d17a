# DeFCN's ATSS row on CrowdHuman (atss.res50.fpn.crowdhuman.800size.30k):
# the FCOS point head with ATSS positives, 30k iterations at 16 images per
# batch, NMS 0.6, 500 detections per image.
_base_ = [
    '../_base_/models/atss_r50_fpn.py', '../_base_/datasets/crowdhuman.py',
    '../_base_/schedules/schedule_30k.py', '../_base_/default_runtime.py'
]
