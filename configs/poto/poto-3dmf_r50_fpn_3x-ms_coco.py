# DeFCN's POTO + 3DMF row on COCO (poto.res50.fpn.coco.800size.3x_ms.3dmf):
# the POTO COCO row plus 3D max filtering.
_base_ = './poto_r50_fpn_3x-ms_coco.py'

model = dict(bbox_head=dict(with_3dmf=True))
