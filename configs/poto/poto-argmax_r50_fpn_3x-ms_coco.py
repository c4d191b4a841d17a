# DeFCN's ablation "replace Hungarian algorithm by argmax"
# (poto.res50.fpn.coco.800size.3x_ms.argmax): the POTO COCO row with top-1
# matching.
_base_ = './poto_r50_fpn_3x-ms_coco.py'

model = dict(train_cfg=dict(assigner=dict(match='argmax')))
