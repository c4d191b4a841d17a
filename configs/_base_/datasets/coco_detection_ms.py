# COCO 2017 detection, mmdet's data settings, with the "ms" training scales
# of the DeFCN recipe: shorter side 640..800 (step 32), longer side <= 1333,
# flip; test at 800 / 1333 (mmdet's base). mmdet's base also sets 2 images
# per GPU: 16 per batch on 8 GPUs, the total the schedules' lr is for.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # boxes left empty after the (clipping) resize are dropped, the image
    # kept, as detectron2's filter_empty_instances; see crowdhuman.py
    dict(
        type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5),
        keep_empty=False),
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
