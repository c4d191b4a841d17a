# FCOS R50-FPN on COCO (one-to-many, NMS 0.6, 100 detections), 3x +
# multi-scale: GN head, norm-on-bbox, centerness on the regression tower,
# centre sampling 1.5, GIoU x2.
_base_ = [
    '../_base_/models/fcos_r50_fpn.py',
    '../_base_/datasets/coco_detection_ms.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]

model = dict(bbox_head=dict(num_classes=80), test_cfg=dict(max_per_img=100))
