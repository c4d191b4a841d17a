# DeFCN's POTO + 3DMF row (poto.res50.fpn.crowdhuman.800size.30k.3dmf): the
# POTO row with 3D max filtering (filter_cfg in the POTO base); probability
# = sigmoid(cls) * sigmoid(filter), focal loss on it.
_base_ = './poto_r50_fpn.py'

model = dict(bbox_head=dict(with_3dmf=True))
