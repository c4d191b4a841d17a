# POTO + 3DMF (no GN after the 3DMF conv) + auxiliary loss, on COCO.
_base_ = './poto-3dmf-aux_r50_fpn_3x-ms_coco.py'

model = dict(bbox_head=dict(filter_cfg=dict(with_norm=False)))
