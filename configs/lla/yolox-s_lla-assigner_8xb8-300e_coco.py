# Reuse of the assigner in an unmodified mmdet detector: mmdet's YOLOX-S on
# COCO, whose only change is the assigner line (SimOTA -> LLA). YOLOXHead
# hands its assigner the points (x, y, stride, stride), the probabilities
# sqrt(sigmoid(cls) * sigmoid(obj)) and the decoded boxes, and uses
# AssignResult.max_overlaps as its IoU-aware classification target.
# (mmdet's RetinaHead / ATSSHead pass the anchors only, so a loss-aware
# assigner cannot rank anything there: LLA.RetinaNet uses LLARetinaHead.)
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'
custom_imports = dict(imports=['mmlla'], allow_failed_imports=False)

model = dict(
    train_cfg=dict(assigner=dict(_delete_=True, type='LossAwareAssigner', prior_type='point')))
