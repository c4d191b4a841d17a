# DeFCN's POTO model on COCO: the POTO model for 80 classes with the COCO
# prior (the 1.5 x stride centre square inside the box, radius 1.5) and 100
# detections per image. Shared by the 3x, 6x and 9x POTO rows, which differ
# only by their schedule base (mmengine refuses two bases that both define
# the schedule, so the 6x / 9x rows cannot inherit the 3x row itself).
_base_ = './poto_r50_fpn.py'

model = dict(
    bbox_head=dict(num_classes=80),
    train_cfg=dict(assigner=dict(center_sampling_radius=1.5)),
    test_cfg=dict(max_per_img=100))
