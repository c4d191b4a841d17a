# POTO R50-FPN on COCO, 3x + multi-scale (shorter side 640..800, longer side
# <= 1333, 270k iterations at 16 images per batch), NMS-free, 100 detections
# per image; the spatial prior is the 1.5-stride centre region of each GT.
# The root of every COCO row (POTO variants, one-to-one baselines, FCOS);
# the data settings are mmdet's own.
_base_ = [
    '../_base_/models/poto_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_3x.py', '../_base_/default_runtime.py'
]

model = dict(
    bbox_head=dict(num_classes=80),
    train_cfg=dict(assigner=dict(center_sampling_radius=1.5)),
    test_cfg=dict(max_per_img=100))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
