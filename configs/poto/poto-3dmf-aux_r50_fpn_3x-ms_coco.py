# DeFCN's POTO + 3DMF + Aux row on COCO
# (poto.res50.fpn.coco.800size.3x_ms.3dmf.aux): the 3DMF COCO row plus the
# auxiliary one-to-many loss stated in the POTO model base.
_base_ = './poto-3dmf_r50_fpn_3x-ms_coco.py'

model = dict(
    bbox_head=dict(aux_loss=dict(_delete_=True, **_base_.poto_aux_loss)),
    train_cfg=dict(aux_assigner=_base_.poto_aux_assigner))
