# LLA's CrowdHuman recipe (the LLA.FCOS config of the LLA repository):
# 28125 iterations, lr x0.1 at 18750 and 24735; everything else as DeFCN's
# 30k recipe (16 images per batch, SGD lr 0.01, momentum 0.9, wd 1e-4 except
# norms, warm-up 1000 iterations from 0.001). The 30k scheduler entries are
# reused with their end and milestones replaced (mmengine replaces a list
# wholesale, so they are taken from the base, not restated).
_base_ = './schedule_30k.py'

max_iters = 28125
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(
        _base_.param_scheduler[1], end=max_iters,
        milestones=[18750, 24735])
]
