"""Every config under configs/ (except _base_) loads and builds its model.

Pretrained initialisations are removed first so nothing is downloaded; only
the build is checked (no forward).
"""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmlla  # noqa: F401  (registers the project's modules)
from mmdet.registry import MODELS

CONFIG_ROOT = Path(__file__).resolve().parents[1] / 'configs'
CONFIGS = sorted(
    p for p in CONFIG_ROOT.rglob('*.py') if '_base_' not in p.parts)


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


def test_configs_found():
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[str(p.relative_to(CONFIG_ROOT)) for p in CONFIGS])
def test_config_builds_model(path):
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    assert 'model' in cfg, f'{path} defines no model'
    cfg.model.backbone.init_cfg = None
    strip_pretrained(cfg.model)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    head = cfg.model.bbox_head
    if head.type == 'POTOHead':
        # the one-to-one rows are NMS-free, the FCOS-style row keeps NMS
        assigner = cfg.model.train_cfg.assigner.type
        if assigner == 'FCOSStyleAssigner':
            assert cfg.model.test_cfg.nms is not None
        else:
            assert cfg.model.test_cfg.nms is None
        assert hasattr(model.bbox_head, 'max_filter') == head.with_3dmf
        assert (model.bbox_head.aux_loss is not None) == bool(
            head.get('aux_loss'))
