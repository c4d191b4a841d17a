# Reuse of the assigner in an unmodified mmdet detector: mmdet's
# RTMDet-Ins-tiny on COCO, whose only change is the assigner line
# (DynamicSoftLabelAssigner -> LLA). RTMDetInsSepBNHead inherits RTMDetHead's
# targets: the assigner gets the points (x, y, stride, stride), the
# classification *logits* and the decoded boxes (hence score_type='logits'),
# max_overlaps of the positives is the quality-focal target, and the mask
# loss takes the positives' GT masks through pos_assigned_gt_inds.
_base_ = 'mmdet::rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmlla'], allow_failed_imports=False)

model = dict(
    train_cfg=dict(
        assigner=dict(
            _delete_=True, type='LossAwareAssigner', score_type='logits',
            prior_type='point')))
