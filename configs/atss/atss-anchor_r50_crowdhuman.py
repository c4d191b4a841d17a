# mmdet's anchor-based ATSS on CrowdHuman: ours, NOT DeFCN's ATSS row (that
# is atss_r50_crowdhuman.py). DeFCN's backbone, input and 30k recipe, NMS 0.6,
# 500 detections per image.
_base_ = [
    '../_base_/models/atss-anchor_r50_fpn.py',
    '../_base_/datasets/crowdhuman.py', '../_base_/schedules/schedule_30k.py',
    '../_base_/default_runtime.py'
]
