# POTO on COCO with the "9x" schedule as DeFCN's reference config runs it:
# 810000 iterations at 16 images per batch, steps at 750000 and 790000.
_base_ = './poto_r50_fpn_3x-ms_coco.py'

max_iters = 810000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[750000, 790000],
        gamma=0.1)
]
