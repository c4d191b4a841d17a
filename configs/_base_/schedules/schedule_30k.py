# The "30k" CrowdHuman recipe of the LLA / DeFCN papers: 16 images per batch
# (2 per GPU x 8 GPUs), SGD lr 0.01, 28125 iterations, steps at 18750, 24735.
max_iters = 28125
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
        milestones=[18750, 24735],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))

# The learning rate above is for 16 images per batch; `--auto-scale-lr`
# rescales it for other batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=16)
