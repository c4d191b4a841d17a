# The "FCOS baseline" row: FCOS without centerness (one-to-many, NMS 0.6) on
# COCO, 3x + multi-scale. The head is POTOHead without 3DMF (FCOS towers, no
# centerness branch, focal + GIoU x2 normalised by positives) fed by FCOS's
# own assignment rule (centre sampling 1.5, scale ranges, smallest area).
_base_ = '../poto/poto_r50_fpn_3x-ms_coco.py'

model = dict(
    train_cfg=dict(
        assigner=dict(
            _delete_=True, type='FCOSStyleAssigner',
            center_sampling_radius=1.5)),
    test_cfg=dict(nms=dict(_delete_=True, type='nms', iou_threshold=0.6)))
