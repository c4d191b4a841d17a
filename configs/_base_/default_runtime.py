# Runtime shared by every mmlla config.
default_scope = 'mmdet'
custom_imports = dict(imports=['mmlla'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook deletes the oldest checkpoint before writing
    # the new one in place: a crash or a full disk mid-save leaves nothing
    # to resume from. This one writes a temporary file, renames it, then
    # updates last_checkpoint and prunes (mmlla/utils/hooks.py).
    checkpoint=dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=5000,
        max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'),
    # mmengine trains on through NaN losses (and saves NaN checkpoints):
    # stop at the first non-finite loss, before that iteration is saved.
    non_finite_loss=dict(type='NonFiniteLossHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

log_level = 'INFO'
load_from = None
resume = False
