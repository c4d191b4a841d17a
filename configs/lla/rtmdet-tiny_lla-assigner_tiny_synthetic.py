# A tiny twin of rtmdet-tiny_lla-assigner_8xb32-300e_coco.py (mmdet's
# RTMDet-tiny with the LLA assigner on logits) that trains on the synthetic
# crowds on a CPU: the model is inherited (narrowed, one class, plain BN, no
# ImageNet weights); data, schedule and runtime are the tiny synthetic ones
# of configs/_base_/tiny_synthetic.py, restated here because a config cannot
# inherit both mmdet's RTMDet chain and this project's bases (mmengine
# refuses a key that two bases define, and both define them all). RTMDet's
# mosaic / mixup pipeline, its EMA and pipeline switch hooks and its epoch
# schedule are replaced by those pieces.
_base_ = './rtmdet-tiny_lla-assigner_8xb32-300e_coco.py'

norm_cfg = dict(type='BN')
model = dict(
    # RTMDet's pipeline pads to 640 x 640; the synthetic 320 x 240 images
    # are padded to a multiple of the largest stride here instead
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        deepen_factor=0.167, widen_factor=0.125, norm_cfg=norm_cfg,
        init_cfg=None),
    neck=dict(
        in_channels=[32, 64, 128], out_channels=32, norm_cfg=norm_cfg),
    bbox_head=dict(
        num_classes=1, in_channels=32, feat_channels=32, norm_cfg=norm_cfg),
    # as the tiny synthetic detectors: NMS 0.6, 300 per image
    test_cfg=dict(
        nms_pre=1000, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6)))

# ------------------------------------------ data (_base_/datasets/
# synthetic_crowdhuman.py on top of _base_/datasets/crowdhuman.py)
dataset_type = 'CrowdHumanODGTDataset'
data_root = 'data/synthetic_crowdhuman/'
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(320, 240), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5),
        keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(320, 240), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
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
    _delete_=True,
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
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
    _delete_=True,
    type='CrowdHumanMRMetric',
    ann_file=data_root + 'annotation_val.odgt',
    body='full')
test_evaluator = val_evaluator

# ------------------------------------------ schedule (_base_/schedules/
# schedule_tiny.py)
max_iters = 300
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1)
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=4)

# ------------------------------------------ runtime (_base_/default_runtime.py
# and tiny_cpu.py's hooks)
custom_hooks = []
default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'),
    non_finite_loss=dict(type='NonFiniteLossHook'))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
