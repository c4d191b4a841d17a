# DeFCN's "FCOS baseline" row on COCO
# (fcos.res50.fpn.coco.800size.3x_ms.wo_ctrness): FCOS without centerness,
# one-to-many, NMS 0.6. The head is the POTO row's POTOHead without 3DMF
# (FCOS towers, no centerness branch), fed by FCOS's assignment rule (centre
# square 1.5 x stride, scale ranges, smallest area), GIoU x1 as the FCOS rows.
_base_ = '../poto/poto_r50_fpn_3x-ms_coco.py'

model = dict(
    bbox_head=dict(loss_bbox=dict(loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            _delete_=True, type='FCOSStyleAssigner',
            center_sampling_radius=1.5)),
    test_cfg=dict(nms=dict(_delete_=True, type='nms', iou_threshold=0.6)))
