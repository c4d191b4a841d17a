# Synthetic crowds in the CrowdHuman layout
# (tools/misc/make_synthetic_crowdhuman.py writes them to
# data/synthetic_crowdhuman/), at their native 320x240 (the Resize also
# brings any other picture to that scale, e.g. for inference).
_base_ = './crowdhuman.py'

data_root = 'data/synthetic_crowdhuman/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(320, 240), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # as in crowdhuman.py: drop boxes left empty, keep the image
    dict(
        type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5),
        keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 240), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# 4 images per batch on one CPU (the tiny schedule's lr is for that).
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotation_val.odgt')
test_evaluator = val_evaluator
