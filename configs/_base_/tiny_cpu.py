# What every tiny CPU detector shares whatever its data: the tiny schedule,
# the runtime (one checkpoint, at the end; a log line every 10 iterations)
# and three pieces to merge into a model (`model = dict(backbone=
# _base_.tiny_backbone, neck=_base_.tiny_neck, bbox_head=_base_.tiny_head)`):
# ResNet-18 at a quarter width, no ImageNet weights, a 32-channel FPN
# (P3-P7) and a 2-conv, 32-channel head. Trained from scratch, the backbone's
# BN is trainable and in train mode and no stage is frozen (the R50 rows
# freeze BN and the first stage of a pretrained network); everything else
# (head type, assigner, test_cfg, input) is the R50 row's.
# tiny_synthetic.py and tiny_synthetic_citypersons.py add the data.
_base_ = ['./schedules/schedule_tiny.py', './default_runtime.py']

tiny_backbone = dict(
    depth=18,
    base_channels=16,
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    init_cfg=None)
tiny_neck = dict(in_channels=[32, 64, 128], out_channels=32)
tiny_head = dict(in_channels=32, feat_channels=32, stacked_convs=2)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=_base_.max_iters, max_keep_ckpts=1))
