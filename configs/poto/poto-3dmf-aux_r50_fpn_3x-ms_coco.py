# POTO + 3DMF + auxiliary one-to-many loss on COCO, 3x + multi-scale.
_base_ = './poto-3dmf_r50_fpn_3x-ms_coco.py'

model = dict(
    bbox_head=dict(
        aux_loss=dict(
            _delete_=True,
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0)),
    train_cfg=dict(aux_assigner=dict(type='POTOAuxAssigner', alpha=0.8,
                                     topk=9)))
