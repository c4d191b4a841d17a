# CrowdHuman, full-body boxes, in the official layout under data/CrowdHuman/:
# annotation_train.odgt, annotation_val.odgt, Images/<ID>.jpg.
# The reference pipeline: shorter side 800, longer side <= 1400, flip.
# Images are decoded and resized with OpenCV (mmcv), not PIL as in cvpods.
dataset_type = 'CrowdHumanODGTDataset'
data_root = 'data/CrowdHuman/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1400, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # Resize clips the boxes to the image (clip_object_border=True by
    # default) and the flip keeps them inside. FilterAnnotations then drops
    # every box, ignore boxes included, that is not wider AND taller than
    # 1e-5 px (a strict `>` on both sides, detectron2's `nonempty` threshold),
    # filtering gt_bboxes, gt_bboxes_labels and gt_ignore_flags with the same
    # mask. keep_empty=False keeps the image when nothing is left (with True,
    # mmdet returns None and the image is skipped); an image that had no box
    # at all is returned untouched either way. So an image with only ignore
    # boxes, or none, stays in training.
    dict(
        type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5),
        keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1400, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# 16 images per batch = 2 per GPU x 8 GPUs (the reference runs); the
# schedules' lr 0.01 is for that total.
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotation_train.odgt',
        data_prefix=dict(img='Images/'),
        body='full',
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotation_val.odgt',
        data_prefix=dict(img='Images/'),
        body='full',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CrowdHumanMRMetric',
    ann_file=data_root + 'annotation_val.odgt',
    body='full')
test_evaluator = val_evaluator
