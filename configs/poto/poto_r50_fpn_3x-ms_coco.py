# DeFCN's POTO row on COCO (poto.res50.fpn.coco.800size.3x_ms): the POTO COCO
# model (centre-square prior, NMS-free, 100 detections per image), 3x +
# multi-scale. The root of the POTO, one-to-one and FCOS w/o centerness COCO
# rows.
_base_ = [
    '../_base_/models/poto_r50_fpn_coco.py',
    '../_base_/datasets/coco_detection_ms.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]
