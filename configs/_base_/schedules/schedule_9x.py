# DeFCN's COCO "9x" recipe: 810000 iterations, lr x0.1 at 750000 and
# 790000; everything else as the 3x recipe.
_base_ = './schedule_3x.py'

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
