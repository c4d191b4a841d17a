# LLA.FCOS R50-FPN on CityPersons: the CrowdHuman row
# (lla/lla_r50_crowdhuman.py: model, 28125 iterations at 16 images per
# batch, NMS 0.6, 300 detections per image) on the CityPersons data
# (`tools/dist_train.sh configs/citypersons/lla_r50_citypersons.py 8`).
_base_ = [
    '../_base_/models/lla_fcos_r50_fpn.py',
    '../_base_/datasets/citypersons.py',
    '../_base_/schedules/schedule_28k.py', '../_base_/default_runtime.py'
]
