# CityPersons (Zhang et al., CVPR 2017: 2975 training and 500 validation
# images of Cityscapes, 2048 x 1024) in the community COCO-style JSON under
# data/CityPersons/ (README.md, "CityPersons"):
#   annotations/train_gt.json, annotations/val_gt.json,
#   leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png.
# Pedestrians are trained on; riders, sitting / other persons, groups, ignore
# regions and boxes flagged `ignore` / `iscrowd` are ignore regions
# (mmlla/datasets/citypersons_dataset.py). Images keep their native
# 2048 x 1024 (ours: the LLA paper's CityPersons input scale could not be
# retrieved, see configs/citypersons/README.md); flip in training; training
# images without any pedestrian are skipped (cvpods' default, the LLA
# reference's framework). Evaluation: MR^-2 in the six standard setups.
dataset_type = 'CityPersonsDataset'
data_root = 'data/CityPersons/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # drop the boxes left empty, keep the image (see crowdhuman.py)
    dict(
        type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5),
        keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# 16 images per batch = 2 per GPU x 8 GPUs, the total the schedules' lr is
# for.
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/train_gt.json',
        data_prefix=dict(img='leftImg8bit/train/'),
        filter_cfg=dict(filter_empty_gt=True),
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
        ann_file='annotations/val_gt.json',
        data_prefix=dict(img='leftImg8bit/val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CityPersonsMRMetric', ann_file=data_root + 'annotations/val_gt.json')
test_evaluator = val_evaluator
