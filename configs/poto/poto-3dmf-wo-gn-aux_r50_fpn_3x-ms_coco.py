# DeFCN's ablation "remove GN in 3DMF" with Aux (poto.res50.fpn.coco.
# 800size.3x_ms.3dmf_wo_gn.aux): the POTO + 3DMF + Aux COCO row without the
# GN after the 3DMF sum.
_base_ = './poto-3dmf-aux_r50_fpn_3x-ms_coco.py'

model = dict(bbox_head=dict(filter_cfg=dict(with_norm=False)))
