# DeFCN's POTO row with the 9x schedule (poto.res50.fpn.coco.800size.9x_ms):
# the POTO COCO row (same model and data bases) with the 9x schedule, 810k
# iterations (steps at 750k and 790k).
_base_ = [
    '../_base_/models/poto_r50_fpn_coco.py',
    '../_base_/datasets/coco_detection_ms.py',
    '../_base_/schedules/schedule_9x.py', '../_base_/default_runtime.py'
]
