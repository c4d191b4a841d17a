# DeFCN's COCO "9x" recipe: the 3x recipe run for 810000 iterations, lr x0.1
# at 750000 and 790000 (the 3x scheduler entries reused, as in
# schedule_6x.py).
_base_ = './schedule_3x.py'

max_iters = 810000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(
        _base_.param_scheduler[1], end=max_iters,
        milestones=[750000, 790000])
]
