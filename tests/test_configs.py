"""The configs under configs/ (except _base_).

- Every row config resolves (``Config.fromfile``) to the recipe of
  docs/algorithms.md (sections 1-3 and 7). The expected values below are
  written out from that spec, not read from the configs, so that a change to
  a base that moves a row away from its reference fails here.
- Every tiny synthetic twin has its R50 row's head, assigner and test_cfg and
  only the tiny backbone / neck / head sizes.
- Every config builds its model (Pretrained initialisations are removed
  first so nothing is downloaded; no forward).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmlla  # noqa: F401  (registers the project's modules)
from mmdet.registry import MODELS

CONFIG_ROOT = Path(__file__).resolve().parents[1] / 'configs'
CONFIGS = sorted(
    p for p in CONFIG_ROOT.rglob('*.py') if '_base_' not in p.parts)


def rel(path: Path) -> str:
    return str(path.relative_to(CONFIG_ROOT))


def plain(node):
    """ConfigDicts to dicts and tuples to lists, recursively."""
    if isinstance(node, dict):
        return {k: plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [plain(v) for v in node]
    return node


def load(name: str) -> Config:
    return Config.fromfile(str(CONFIG_ROOT / name))


# ---------------------------------------------------------------------------
# The spec, restated (docs/algorithms.md)
# ---------------------------------------------------------------------------

# section 7: schedules -> (iterations, lr steps)
SCHEDULES = {
    '30k': (30000, [20000, 25000]),  # DeFCN's CrowdHuman rows
    '28k': (28125, [18750, 24735]),  # LLA's CrowdHuman row
    '3x': (270000, [210000, 250000]),
    '6x': (540000, [480000, 520000]),
    '9x': (810000, [750000, 790000]),
}
WARMUP = dict(
    type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000)
OPTIM_WRAPPER = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0))
IMAGES_PER_GPU = 2  # x 8 GPUs = 16 images per batch
BASE_BATCH_SIZE = 16

# section 7: backbone, input, FPN
R50_BACKBONE = dict(
    type='ResNet',
    depth=50,
    num_stages=4,
    out_indices=[1, 2, 3],
    frozen_stages=1,
    norm_cfg=dict(type='BN', requires_grad=False),
    norm_eval=True,
    style='caffe',
    init_cfg=dict(
        type='Pretrained',
        checkpoint='open-mmlab://detectron2/resnet50_caffe'))
PREPROCESSOR = dict(
    type='DetDataPreprocessor',
    mean=[103.530, 116.280, 123.675],
    std=[1.0, 1.0, 1.0],
    bgr_to_rgb=False,
    pad_size_divisor=32)
FPN = dict(
    type='FPN',
    in_channels=[512, 1024, 2048],
    out_channels=256,
    start_level=0,
    add_extra_convs='on_output',
    relu_before_extra_convs=True,
    num_outs=5,
    init_cfg=dict(type='Caffe2Xavier', layer='Conv2d'))

# section 6 / 7: data
FILTER = dict(
    type='FilterAnnotations', min_gt_bbox_wh=[1e-5, 1e-5], keep_empty=False)
RESIZE = {
    'crowdhuman': 'Resize',
    'coco': 'RandomChoiceResize',
    'citypersons': 'Resize'
}
CROWDHUMAN_SCALE = [1400, 800]  # shorter side 800, longer <= 1400
CITYPERSONS_SCALE = [2048, 1024]  # CityPersons' native size (ours)
COCO_TRAIN_SCALES = [[1333, s] for s in range(640, 801, 32)]
COCO_TEST_SCALE = [1333, 800]
NUM_CLASSES = {'crowdhuman': 1, 'coco': 80, 'citypersons': 1}
# detections per image of the DeFCN rows (LLA's CrowdHuman row: 300)
MAX_PER_IMG = {'crowdhuman': 500, 'coco': 100}

# sections 1-5 and 7: heads, losses, assigners, inference
STRIDES = [8, 16, 32, 64, 128]
GN = dict(type='GN', num_groups=32, requires_grad=True)
FOCAL = dict(
    type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
CENTERNESS_BCE = dict(
    type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)
IOU_BCE = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.5)
NMS = dict(type='nms', iou_threshold=0.6)
NMS_PRE = 1000
SCORE_THR = 0.05
FCOS_ASSIGNER = dict(type='FCOSStyleAssigner', center_sampling_radius=1.5)
POINT_ATSS_ASSIGNER = dict(type='PointATSSAssigner', topk=9, anchor_scale=8.0)
AUX_ASSIGNER = dict(type='POTOAuxAssigner', alpha=0.8, topk=9)


def lla_assigner(prior_type):
    return dict(
        type='LossAwareAssigner',
        topk=10,
        reg_cost=1.5,
        alpha=0.25,
        gamma=2.0,
        prior_type=prior_type)


def poto_assigner(radius, match='hungarian'):
    return dict(
        type='POTOAssigner',
        alpha=0.8,
        center_sampling_radius=radius,
        match=match)


# The POTOHead / LLAHead / DeFCNFCOSHead interfaces.
POTO_HEAD_ARGS = {
    'type', 'num_classes', 'in_channels', 'stacked_convs', 'feat_channels',
    'strides', 'norm_cfg', 'conv_bias', 'prior_offset', 'with_3dmf',
    'filter_cfg', 'aux_loss', 'anchor_scale', 'loss_cls', 'loss_bbox'
}
LLA_HEAD_ARGS = {
    'type', 'num_classes', 'in_channels', 'stacked_convs', 'feat_channels',
    'strides', 'norm_cfg', 'conv_bias', 'prior_offset', 'loss_cls',
    'loss_bbox', 'loss_iou'
}
# owned by the assigner in DeFCN's FCOS / ATSS rows
FCOS_SAMPLING_ARGS = {'center_sampling', 'center_sample_radius',
                      'regress_ranges'}


@dataclass(frozen=True)
class Row:
    data: str  # 'crowdhuman' | 'coco'
    schedule: str  # a key of SCHEDULES
    detector: str
    head: str
    bbox_weight: float  # GIoU loss weight
    assigner: dict
    max_per_img: int
    nms: bool  # class-aware NMS 0.6, else NMS-free
    prior_offset: Optional[float] = 0.5
    with_3dmf: bool = False
    filter_norm: bool = True
    aux: bool = False
    anchor_scale: Optional[float] = None


def poto_row(data, radius, schedule='3x', match='hungarian', **kw):
    """A POTO-family row: NMS-free, GIoU x2."""
    return Row(data, schedule, 'FCOS', 'POTOHead', 2.0,
               poto_assigner(radius, match), MAX_PER_IMG[data], False, **kw)


ROWS = {
    # CrowdHuman, DeFCN (30k, 500 detections)
    'fcos/fcos_r50_crowdhuman.py':
    Row('crowdhuman', '30k', 'FCOS', 'DeFCNFCOSHead', 1.0, FCOS_ASSIGNER,
        500, True),
    'atss/atss_r50_crowdhuman.py':
    Row('crowdhuman', '30k', 'FCOS', 'DeFCNFCOSHead', 2.0,
        POINT_ATSS_ASSIGNER, 500, True),
    'poto/poto_r50_crowdhuman.py':
    poto_row('crowdhuman', 0.0, schedule='30k'),
    'poto/poto-3dmf_r50_crowdhuman.py':
    poto_row('crowdhuman', 0.0, schedule='30k', with_3dmf=True),
    'poto/poto-3dmf-aux_r50_crowdhuman.py':
    poto_row('crowdhuman', 0.0, schedule='30k', with_3dmf=True, aux=True),
    # CrowdHuman, LLA (28k, 300 detections, offset 0)
    'lla/lla_r50_crowdhuman.py':
    Row('crowdhuman', '28k', 'FCOS', 'LLAHead', 2.0, lla_assigner('point'),
        300, True, prior_offset=0.0),
    # ours: LLA on RetinaNet's anchors (offset 0 through the anchors)
    'lla/lla-retinanet_r50_crowdhuman.py':
    Row('crowdhuman', '28k', 'RetinaNet', 'LLARetinaHead', 2.0,
        lla_assigner('anchor'), 300, True, prior_offset=None),
    # ours: mmdet's anchor-based ATSS with DeFCN's recipe
    'atss/atss-anchor_r50_crowdhuman.py':
    Row('crowdhuman', '30k', 'ATSS', 'ATSSHead', 2.0,
        dict(type='ATSSAssigner', topk=9), 500, True, prior_offset=None),
    # COCO (100 detections)
    'fcos/fcos_r50_fpn_3x-ms_coco.py':
    Row('coco', '3x', 'FCOS', 'DeFCNFCOSHead', 1.0, FCOS_ASSIGNER, 100,
        True),
    'fcos/fcos-wo-ctrness_r50_fpn_3x-ms_coco.py':
    Row('coco', '3x', 'FCOS', 'POTOHead', 1.0, FCOS_ASSIGNER, 100, True),
    'one2one/anchor_r50_fpn_3x-ms_coco.py':
    Row('coco', '3x', 'FCOS', 'POTOHead', 2.0,
        dict(type='One2OneAnchorAssigner', anchor_scale=4.0), 100, False,
        anchor_scale=4.0),
    'one2one/center_r50_fpn_3x-ms_coco.py':
    Row('coco', '3x', 'FCOS', 'POTOHead', 2.0,
        dict(type='One2OneCenterAssigner'), 100, False),
    'one2one/foreground-loss_r50_fpn_3x-ms_coco.py':
    Row('coco', '3x', 'FCOS', 'POTOHead', 2.0,
        dict(
            type='ForegroundLossAssigner',
            alpha=0.25,
            gamma=2.0,
            reg_weight=2.0,
            center_sampling_radius=1.5), 100, False),
    'poto/poto_r50_fpn_3x-ms_coco.py':
    poto_row('coco', 1.5),
    'poto/poto-3dmf_r50_fpn_3x-ms_coco.py':
    poto_row('coco', 1.5, with_3dmf=True),
    'poto/poto-3dmf-aux_r50_fpn_3x-ms_coco.py':
    poto_row('coco', 1.5, with_3dmf=True, aux=True),
    'poto/poto_r50_fpn_6x-ms_coco.py':
    poto_row('coco', 1.5, schedule='6x'),
    'poto/poto_r50_fpn_9x-ms_coco.py':
    poto_row('coco', 1.5, schedule='9x'),
    'poto/poto-argmax_r50_fpn_3x-ms_coco.py':
    poto_row('coco', 1.5, match='argmax'),
    'poto/poto-3dmf-wo-gn_r50_fpn_3x-ms_coco.py':
    poto_row('coco', 1.5, with_3dmf=True, filter_norm=False),
    'poto/poto-3dmf-wo-gn-aux_r50_fpn_3x-ms_coco.py':
    poto_row('coco', 1.5, with_3dmf=True, filter_norm=False, aux=True),
    # CityPersons: the CrowdHuman rows (recipe, schedule, detections per
    # image) on the CityPersons data
    'citypersons/lla_r50_citypersons.py':
    Row('citypersons', '28k', 'FCOS', 'LLAHead', 2.0, lla_assigner('point'),
        300, True, prior_offset=0.0),
    'citypersons/fcos_r50_citypersons.py':
    Row('citypersons', '30k', 'FCOS', 'DeFCNFCOSHead', 1.0, FCOS_ASSIGNER,
        500, True),
    'citypersons/poto-3dmf-aux_r50_citypersons.py':
    Row('citypersons', '30k', 'FCOS', 'POTOHead', 2.0, poto_assigner(0.0),
        500, False, with_3dmf=True, aux=True),
}

# tiny CPU twin -> its R50 row
TWINS = {
    'fcos/fcos_tiny_synthetic.py': 'fcos/fcos_r50_crowdhuman.py',
    'atss/atss_tiny_synthetic.py': 'atss/atss_r50_crowdhuman.py',
    'atss/atss-anchor_tiny_synthetic.py':
    'atss/atss-anchor_r50_crowdhuman.py',
    'lla/lla_tiny_synthetic.py': 'lla/lla_r50_crowdhuman.py',
    'lla/lla-retinanet_tiny_synthetic.py':
    'lla/lla-retinanet_r50_crowdhuman.py',
    'poto/poto_tiny_synthetic.py': 'poto/poto_r50_crowdhuman.py',
    'poto/poto-3dmf_tiny_synthetic.py': 'poto/poto-3dmf_r50_crowdhuman.py',
    'poto/poto-3dmf-aux_tiny_synthetic.py':
    'poto/poto-3dmf-aux_r50_crowdhuman.py',
    'citypersons/lla_tiny_synthetic-citypersons.py':
    'citypersons/lla_r50_citypersons.py',
    'citypersons/fcos_tiny_synthetic-citypersons.py':
    'citypersons/fcos_r50_citypersons.py',
    'citypersons/poto-3dmf-aux_tiny_synthetic-citypersons.py':
    'citypersons/poto-3dmf-aux_r50_citypersons.py',
}
TINY_BACKBONE = dict(
    depth=18,
    base_channels=16,
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    init_cfg=None)
TINY_NECK = dict(in_channels=[32, 64, 128], out_channels=32)
TINY_HEAD = dict(in_channels=32, feat_channels=32, stacked_convs=2)

# mmdet's YOLOX-S / RTMDet-tiny with only their assigner changed (not recipe
# rows), and the RTMDet one's tiny synthetic twin
REUSE = {
    'lla/yolox-s_lla-assigner_8xb8-300e_coco.py',
    'lla/rtmdet-tiny_lla-assigner_8xb32-300e_coco.py',
    'lla/rtmdet-tiny_lla-assigner_tiny_synthetic.py',
    'lla/ddod_r50_fpn_lla-assigner_1x_coco.py',
    'lla/rtmdet-ins_tiny_lla-assigner_8xb32-300e_coco.py',
}

# ---------------------------------------------------------------------------


def test_configs_found():
    assert len(CONFIGS) >= 20


def test_every_config_is_pinned():
    """A new config must get its expected values here."""
    assert {rel(p) for p in CONFIGS} == set(ROWS) | set(TWINS) | REUSE


@pytest.mark.parametrize('name', sorted(ROWS))
def test_row_schedule(name):
    row, cfg = ROWS[name], load(name)
    max_iters, milestones = SCHEDULES[row.schedule]
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == max_iters
    warmup, steps = plain(cfg.param_scheduler)
    assert warmup == WARMUP
    assert steps == dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=milestones,
        gamma=0.1)
    assert plain(cfg.optim_wrapper) == OPTIM_WRAPPER
    assert cfg.auto_scale_lr.base_batch_size == BASE_BATCH_SIZE
    assert cfg.train_dataloader.batch_size == IMAGES_PER_GPU


@pytest.mark.parametrize('name', sorted(ROWS))
def test_row_backbone_neck_input(name):
    model = load(name).model
    assert plain(model.backbone) == R50_BACKBONE
    assert plain(model.data_preprocessor) == PREPROCESSOR
    assert plain(model.neck) == FPN


@pytest.mark.parametrize('name', sorted(ROWS))
def test_row_data(name):
    row, cfg = ROWS[name], load(name)
    train = plain(cfg.train_dataloader.dataset.pipeline)
    test = plain(cfg.test_dataloader.dataset.pipeline)
    # resize (clips the boxes), flip, drop the boxes left empty
    assert [t['type'] for t in train] == [
        'LoadImageFromFile', 'LoadAnnotations', RESIZE[row.data],
        'RandomFlip', 'FilterAnnotations', 'PackDetInputs'
    ]
    assert train[4] == FILTER
    resize = train[2]
    test_resize = next(t for t in test if t['type'] == 'Resize')
    if row.data == 'crowdhuman':
        assert cfg.train_dataloader.dataset.type == 'CrowdHumanODGTDataset'
        assert resize == dict(
            type='Resize', scale=CROWDHUMAN_SCALE, keep_ratio=True)
        assert test_resize['scale'] == CROWDHUMAN_SCALE
        assert cfg.test_evaluator.type == 'CrowdHumanMRMetric'
    elif row.data == 'citypersons':
        assert cfg.train_dataloader.dataset.type == 'CityPersonsDataset'
        assert resize == dict(
            type='Resize', scale=CITYPERSONS_SCALE, keep_ratio=True)
        assert test_resize['scale'] == CITYPERSONS_SCALE
        assert cfg.test_evaluator.type == 'CityPersonsMRMetric'
    else:
        assert cfg.train_dataloader.dataset.type == 'CocoDataset'
        assert resize == dict(
            type='RandomChoiceResize', scales=COCO_TRAIN_SCALES,
            keep_ratio=True)
        assert test_resize['scale'] == COCO_TEST_SCALE
    assert test_resize['keep_ratio'] is True


@pytest.mark.parametrize('name', sorted(ROWS))
def test_row_head_and_assigner(name):
    row, model = ROWS[name], load(name).model
    head = plain(model.bbox_head)
    assert model.type == row.detector
    assert head['type'] == row.head
    assert head['num_classes'] == NUM_CLASSES[row.data]
    assert head['in_channels'] == 256
    assert head['feat_channels'] == 256
    assert head['stacked_convs'] == 4
    assert head['loss_cls'] == FOCAL  # no `activated`: the heads set it
    assert head['loss_bbox'] == dict(
        type='GIoULoss', loss_weight=row.bbox_weight)

    assert plain(model.train_cfg.assigner) == row.assigner
    if row.aux:
        assert plain(model.train_cfg.aux_assigner) == AUX_ASSIGNER
    else:
        assert 'aux_assigner' not in model.train_cfg

    if row.head in ('DeFCNFCOSHead', 'LLAHead', 'POTOHead'):
        assert head['strides'] == STRIDES
        assert head['norm_cfg'] == GN
        assert head['conv_bias'] is True
        assert head['prior_offset'] == row.prior_offset
    if row.head == 'DeFCNFCOSHead':
        assert head['norm_on_bbox'] is True
        assert head['centerness_on_reg'] is True
        assert head['loss_centerness'] == CENTERNESS_BCE
        assert not FCOS_SAMPLING_ARGS & set(head)
    elif row.head == 'LLAHead':
        assert set(head) == LLA_HEAD_ARGS
        assert head['loss_iou'] == IOU_BCE
    elif row.head == 'POTOHead':
        assert set(head) <= POTO_HEAD_ARGS
        assert head['with_3dmf'] is row.with_3dmf
        if row.with_3dmf:
            assert head['filter_cfg'] == dict(
                type='MaxFiltering3D', kernel_size=3, tau=2,
                with_norm=row.filter_norm)
        assert head['aux_loss'] == (FOCAL if row.aux else None)
        assert head.get('anchor_scale') == row.anchor_scale
    else:  # the anchor heads: one square anchor of 8 x stride per location
        generator = head['anchor_generator']
        assert generator['octave_base_scale'] == 8
        assert generator['scales_per_octave'] == 1
        assert generator['ratios'] == [1.0]
        assert generator['strides'] == STRIDES
        if row.head == 'LLARetinaHead':  # LLA's offset 0
            assert generator['center_offset'] == 0.0
            assert head['reg_decoded_bbox'] is True
        else:  # mmdet's ATSS as mmdet has it
            assert head['norm_cfg'] == GN
            assert head['loss_centerness'] == CENTERNESS_BCE
            assert generator.get('center_offset', 0.0) == 0.0


@pytest.mark.parametrize('name', sorted(ROWS))
def test_row_inference(name):
    row, model = ROWS[name], load(name).model
    # no min_bbox_size: the heads clip and drop empty boxes after NMS
    assert plain(model.test_cfg) == dict(
        nms_pre=NMS_PRE,
        score_thr=SCORE_THR,
        nms=NMS if row.nms else None,
        max_per_img=row.max_per_img)


@pytest.mark.parametrize('twin', sorted(TWINS))
def test_tiny_twin_is_its_row_at_toy_size(twin):
    tiny, full = load(twin), load(TWINS[twin])
    assert tiny.model.type == full.model.type
    assert plain(tiny.model.train_cfg) == plain(full.model.train_cfg)
    assert plain(tiny.model.test_cfg) == plain(full.model.test_cfg)
    assert plain(tiny.model.data_preprocessor) == plain(
        full.model.data_preprocessor)
    head = plain(tiny.model.bbox_head)
    assert head == dict(plain(full.model.bbox_head), **TINY_HEAD)
    neck = plain(tiny.model.neck)
    assert neck == dict(plain(full.model.neck), **TINY_NECK)
    backbone = plain(tiny.model.backbone)
    assert backbone == dict(plain(full.model.backbone), **TINY_BACKBONE)
    pipeline = plain(tiny.train_dataloader.dataset.pipeline)
    assert FILTER in pipeline


def test_reuse_config_changes_only_the_assigner():
    cfg = load('lla/yolox-s_lla-assigner_8xb8-300e_coco.py')
    assert plain(cfg.model.train_cfg.assigner) == dict(
        type='LossAwareAssigner', prior_type='point')
    assert cfg.model.type == 'YOLOX'


@pytest.mark.parametrize('name', [
    'lla/rtmdet-tiny_lla-assigner_8xb32-300e_coco.py',
    'lla/rtmdet-tiny_lla-assigner_tiny_synthetic.py',
    'lla/rtmdet-ins_tiny_lla-assigner_8xb32-300e_coco.py'
])
def test_rtmdet_reuse_config_changes_only_the_assigner(name):
    cfg = load(name)
    assert plain(cfg.model.train_cfg.assigner) == dict(
        type='LossAwareAssigner', score_type='logits', prior_type='point')
    assert cfg.model.type == 'RTMDet'


def test_ddod_reuse_config_changes_only_the_cls_assigner():
    cfg = load('lla/ddod_r50_fpn_lla-assigner_1x_coco.py')
    assert plain(cfg.model.train_cfg.assigner) == dict(
        type='LossAwareAssigner', score_type='logits', prior_type='anchor')
    assert plain(cfg.model.train_cfg.reg_assigner) == dict(
        type='ATSSAssigner', topk=9, alpha=0.5)
    assert cfg.model.type == 'DDOD'


def strip_pretrained(node):
    """Drop every ``init_cfg`` that would load weights (recursively)."""
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and (init_cfg.get('type') == 'Pretrained'
                                           or 'checkpoint' in init_cfg):
            node['init_cfg'] = None
        for value in node.values():
            strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            strip_pretrained(value)


@pytest.mark.parametrize('path', CONFIGS, ids=[rel(p) for p in CONFIGS])
def test_config_builds_model(path):
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    assert 'model' in cfg, f'{path} defines no model'
    strip_pretrained(cfg.model)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert type(model.bbox_head).__name__ == cfg.model.bbox_head.type


@pytest.mark.parametrize('name', [
    'poto/poto-3dmf-aux_r50_crowdhuman.py', 'lla/lla_r50_crowdhuman.py',
    'fcos/fcos_r50_crowdhuman.py'
])
def test_weight_decay_spares_only_the_gn_layers(name):
    """The optimiser built from the row config: weight decay 0 on every GN
    weight and bias, 1e-4 on everything else that trains (conv weights and
    biases, the per-level scales); the frozen BN trains nothing."""
    import torch.nn as nn
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(str(CONFIG_ROOT / name))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    strip_pretrained(cfg.model)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[id(p)] = group['weight_decay']
    gn, other = 0, 0
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if not p.requires_grad:
                assert isinstance(module, (nn.BatchNorm2d, nn.Conv2d))
                continue
            if isinstance(module, nn.GroupNorm):
                assert decay[id(p)] == 0
                gn += 1
            else:
                assert decay[id(p)] == 1e-4, module
                other += 1
    # 4 + 4 tower GNs (weight, bias) (+ the 3DMF GN); convs, scales
    assert gn >= 16 and other > 50
    # frozen: the whole stem and first stage, every BN
    for name_, p in model.backbone.named_parameters():
        if name_.startswith(('conv1', 'bn1', 'layer1')) or '.bn' in name_ \
                or 'downsample.1' in name_:
            assert not p.requires_grad, name_
