# FCOS R50-FPN on CityPersons: DeFCN's CrowdHuman FCOS row
# (fcos/fcos_r50_crowdhuman.py: model, 30k iterations at 16 images per
# batch, NMS 0.6, 500 detections per image) on the CityPersons data.
_base_ = [
    '../_base_/models/fcos_r50_fpn.py', '../_base_/datasets/citypersons.py',
    '../_base_/schedules/schedule_30k.py', '../_base_/default_runtime.py'
]
