# DeFCN's CrowdHuman recipe (the "30k" rows of its playground: FCOS, ATSS,
# POTO, POTO + 3DMF, POTO + 3DMF + Aux): 30000 iterations at 16 images per
# batch (2 per GPU x 8 GPUs, set in the dataset bases), SGD lr 0.01,
# momentum 0.9, lr x0.1 at 20000 and 25000, linear warm-up over the first
# 1000 iterations from 0.001 x lr.
max_iters = 30000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[20000, 25000],
        gamma=0.1)
]
# Weight decay 1e-4 on every parameter except the norm layers' (0): the only
# trainable norms are the heads' GN (the backbone's BN is frozen, the FPN has
# none); biases and the per-level scales keep 1e-4.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0))

# The learning rate above is for 16 images per batch; `--auto-scale-lr`
# rescales it for other batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=16)
