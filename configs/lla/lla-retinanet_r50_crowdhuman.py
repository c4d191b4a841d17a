# LLA.RetinaNet R50-FPN on CrowdHuman: ours (the paper's row, no reference
# config), with LLA.FCOS's recipe: 28125 iterations at 16 images per batch,
# NMS 0.6, 300 detections per image.
_base_ = [
    '../_base_/models/lla-retinanet_r50_fpn.py',
    '../_base_/datasets/crowdhuman.py', '../_base_/schedules/schedule_28k.py',
    '../_base_/default_runtime.py'
]
