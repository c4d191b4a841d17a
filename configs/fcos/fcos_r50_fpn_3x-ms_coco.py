# DeFCN's FCOS row on COCO (fcos.res50.fpn.coco.800size.3x_ms): the
# CrowdHuman FCOS model for 80 classes, 100 detections per image, 3x +
# multi-scale.
_base_ = [
    '../_base_/models/fcos_r50_fpn.py',
    '../_base_/datasets/coco_detection_ms.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]

model = dict(bbox_head=dict(num_classes=80), test_cfg=dict(max_per_img=100))
