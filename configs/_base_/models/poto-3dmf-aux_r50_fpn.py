# DeFCN's POTO + 3DMF + Aux row
# (poto.res50.fpn.crowdhuman.800size.30k.3dmf.aux): the 3DMF row plus the
# auxiliary one-to-many loss stated in the POTO base.
_base_ = './poto-3dmf_r50_fpn.py'

model = dict(
    bbox_head=dict(aux_loss=dict(_delete_=True, **_base_.poto_aux_loss)),
    train_cfg=dict(aux_assigner=_base_.poto_aux_assigner))
