# POTO + 3DMF on COCO, 3x + multi-scale.
_base_ = './poto_r50_fpn_3x-ms_coco.py'

model = dict(
    bbox_head=dict(
        with_3dmf=True,
        filter_cfg=dict(
            type='MaxFiltering3D', kernel_size=3, tau=2, with_norm=True)))
