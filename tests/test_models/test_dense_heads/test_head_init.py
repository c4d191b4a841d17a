"""Every head conv of the point heads (towers, classifier, regressor,
IoU / centerness, 3DMF and its filter) starts from normal(0, 0.01) with a
zero bias, the classifier bias from the prior probability 0.01, and the
tower convs carry a bias (docs: algorithms.md section 7, "head convs and
init")."""
import math

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS

import mmlla  # noqa: F401

COMMON = dict(num_classes=1, in_channels=64, feat_channels=64,
              stacked_convs=2, norm_cfg=dict(type='GN', num_groups=32))


@pytest.mark.parametrize('cfg', [
    dict(type='LLAHead'),
    dict(type='DeFCNFCOSHead'),
    dict(type='POTOHead'),
    dict(type='POTOHead', with_3dmf=True),
    dict(type='POTOHead', with_3dmf=True,
         filter_cfg=dict(type='MaxFiltering3D', with_norm=False)),
    dict(type='POTOHead', anchor_scale=4.0),
], ids=['lla', 'fcos', 'poto', 'poto-3dmf', 'poto-3dmf-wo-gn', 'anchor'])
def test_head_conv_init(cfg):
    torch.manual_seed(0)
    head = MODELS.build(dict(COMMON, **cfg))
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:  # init_weights must set every conv
        conv.weight.data.fill_(3.0)
        conv.bias.data.fill_(3.0)
    head.init_weights()
    # towers, classifier, regressor (+ IoU / centerness / 3DMF / filter)
    assert len(convs) >= 2 * 2 + 2
    for conv in convs:
        assert conv.bias is not None, conv
        assert 0.008 < float(conv.weight.std()) < 0.012, conv
        assert abs(float(conv.weight.mean())) < 0.002
        if conv is head.conv_cls:
            torch.testing.assert_close(
                conv.bias, torch.full_like(conv.bias, -math.log(99.)))
        else:
            assert (conv.bias == 0).all(), conv
    norms = [m for m in head.modules() if isinstance(m, nn.GroupNorm)]
    for norm in norms:
        assert (norm.weight == 1).all() and (norm.bias == 0).all()
    # GN in each tower conv, plus the single 3DMF GN when it has one
    with_filter_gn = cfg.get('with_3dmf') and cfg.get(
        'filter_cfg', {}).get('with_norm', True)
    assert len(norms) == 2 * 2 + int(bool(with_filter_gn))
