# Reuse of the assigner in an unmodified mmdet detector: mmdet's DDOD-R50 on
# COCO, whose only change is its classification assigner (ATSSAssigner with
# alpha=0.8 -> LLA). DDODHead builds `cls_assigner` from `assigner` and
# `reg_assigner` from `reg_assigner`, and calls either with the anchors, the
# decoded boxes and the classification *logits* as keywords (hence
# score_type='logits'; prior_type='anchor': the priors are xyxy anchors). It
# reads gt_inds and labels through its PseudoSampler (gt_inds == -1, an
# ignore claim, is neither positive nor negative: label weight 0), not
# max_overlaps. `reg_assigner` (ATSS, alpha=0.5) is kept: both assigners get
# the same inputs, so a second, identical LLA would only repeat the first
# assignment and undo DDOD's cls / reg disentanglement.
_base_ = 'mmdet::ddod/ddod_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlla'], allow_failed_imports=False)

model = dict(
    train_cfg=dict(
        assigner=dict(
            _delete_=True,
            type='LossAwareAssigner',
            score_type='logits',
            prior_type='anchor')))
