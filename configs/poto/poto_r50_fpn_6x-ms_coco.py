# DeFCN's POTO row with the 6x schedule (poto.res50.fpn.coco.800size.6x_ms):
# the POTO COCO row (same model and data bases) with the 6x schedule, 540k
# iterations (steps at 480k and 520k).
_base_ = [
    '../_base_/models/poto_r50_fpn_coco.py',
    '../_base_/datasets/coco_detection_ms.py',
    '../_base_/schedules/schedule_6x.py', '../_base_/default_runtime.py'
]
