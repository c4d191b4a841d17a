# DeFCN's COCO "6x" recipe: 540000 iterations, lr x0.1 at 480000 and
# 520000; everything else as the 3x recipe.
_base_ = './schedule_3x.py'

max_iters = 540000
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
        milestones=[480000, 520000],
        gamma=0.1)
]
