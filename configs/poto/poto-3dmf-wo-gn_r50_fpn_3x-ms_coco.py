# POTO + 3DMF without the GN after the 3DMF conv, on COCO.
_base_ = './poto-3dmf_r50_fpn_3x-ms_coco.py'

model = dict(bbox_head=dict(filter_cfg=dict(with_norm=False)))
