# Reuse of the assigner in an unmodified mmdet detector: mmdet's RTMDet-tiny
# on COCO, whose only change is the assigner line (DynamicSoftLabelAssigner
# -> LLA). RTMDetHead hands its assigner the points (x, y, stride, stride),
# the classification *logits* and the decoded boxes, and uses
# AssignResult.max_overlaps of the positives as its quality-focal target
# (and box-loss weight): hence score_type='logits'.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmlla'], allow_failed_imports=False)

model = dict(
    train_cfg=dict(
        assigner=dict(
            _delete_=True, type='LossAwareAssigner', score_type='logits',
            prior_type='point')))
