# POTO + 3D max filtering: probability = sigmoid(cls) * sigmoid(filter).
_base_ = './poto_r50_fpn.py'

model = dict(
    bbox_head=dict(
        with_3dmf=True,
        filter_cfg=dict(
            type='MaxFiltering3D', kernel_size=3, tau=2, with_norm=True)))
