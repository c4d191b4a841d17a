# LLA.FCOS R50-FPN on CrowdHuman, as the LLA repository's config: 28125
# iterations at 16 images per batch (`tools/dist_train.sh
# configs/lla/lla_r50_crowdhuman.py 8`), NMS 0.6, 300 detections per image.
_base_ = [
    '../_base_/models/lla_fcos_r50_fpn.py', '../_base_/datasets/crowdhuman.py',
    '../_base_/schedules/schedule_28k.py', '../_base_/default_runtime.py'
]
