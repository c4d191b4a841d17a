# POTO + 3DMF + the auxiliary one-to-many focal loss on the unfiltered
# logits (top 9 per level by quality, threshold mean + std, inside the box).
_base_ = './poto-3dmf_r50_fpn.py'

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
