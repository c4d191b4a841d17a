# DeFCN's one-to-one baseline "Foreground loss" on COCO
# (loss.res50.fpn.coco.800size.3x_ms): the POTO COCO row whose assigner is
# Hungarian on focal loss + 2 x GIoU loss inside the 1.5-stride centre
# square; NMS-free.
_base_ = '../poto/poto_r50_fpn_3x-ms_coco.py'

model = dict(
    train_cfg=dict(
        assigner=dict(
            _delete_=True,
            type='ForegroundLossAssigner',
            alpha=0.25,
            gamma=2.0,
            reg_weight=2.0,
            center_sampling_radius=1.5)))
