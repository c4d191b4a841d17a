# POTO R50-FPN on COCO, 3x + multi-scale (shorter side 640..800, longer side
# <= 1333, 270k iterations at 16 images per batch), NMS-free, 100 detections
# per image; the spatial prior is the 1.5-stride centre region of each GT.
# The root of the POTO and one-to-one COCO rows.
_base_ = [
    '../_base_/models/poto_r50_fpn.py',
    '../_base_/datasets/coco_detection_ms.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]

model = dict(
    bbox_head=dict(num_classes=80),
    train_cfg=dict(assigner=dict(center_sampling_radius=1.5)),
    test_cfg=dict(max_per_img=100))
