# DeFCN's COCO "6x" recipe: the 3x recipe run for 540000 iterations, lr x0.1
# at 480000 and 520000. The 3x warm-up is reused as it is, and the 3x step
# decay with its end and milestones replaced (mmengine replaces a list
# wholesale, so the two entries are taken from the base, not restated).
_base_ = './schedule_3x.py'

max_iters = 540000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(
        _base_.param_scheduler[1], end=max_iters,
        milestones=[480000, 520000])
]
