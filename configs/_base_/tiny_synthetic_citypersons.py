# tiny_synthetic.py on the synthetic CityPersons data: the same tiny
# backbone / neck / head pieces (restated: tiny_synthetic.py brings the
# synthetic CrowdHuman data with them, and mmengine refuses a key that two
# bases define), the tiny schedule and the runtime.
_base_ = [
    './datasets/synthetic_citypersons.py', './schedules/schedule_tiny.py',
    './default_runtime.py'
]

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
