"""MaxFiltering3D (DeFCN 3DMF, docs/algorithms.md section 3).

``out_l = ReLU(GN(maxpool_l + x_l))`` (no GN with ``with_norm=False``), where
``maxpool_l`` is the max over levels ``l - tau//2 .. l + tau//2`` (those that
exist, bilinearly resized) and a ``k x k`` window (clipped at the borders) of
``f = conv3x3(x)`` (bias, no norm). The layer is compared with an explicit
per-position loop written independently of ``nn.MaxPool3d``.
"""
import copy
import functools
import inspect

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.dense_heads import AnchorFreeHead
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmlla.models.layers import MaxFiltering3D

HEAD_INIT_CFG = inspect.signature(
    AnchorFreeHead.__init__).parameters['init_cfg'].default

C = 8
GN4 = dict(type='GN', num_groups=4, requires_grad=True)
SIZES = [(16, 12), (8, 6), (4, 3), (2, 2)]


def make_feats(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, C, h, w, generator=g) for h, w in SIZES]


def make_layer(kernel_size=3, tau=2, with_norm=True, seed=1):
    """A layer with large random conv weights/bias and random GN affine."""
    layer = MaxFiltering3D(
        C, kernel_size=kernel_size, tau=tau, with_norm=with_norm,
        norm_cfg=GN4)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.conv.weight.copy_(
            0.3 * torch.randn(layer.conv.weight.shape, generator=g))
        layer.conv.bias.copy_(torch.randn(C, generator=g))
        if with_norm:
            layer.norm.weight.copy_(
                torch.rand(C, generator=g) * 1.5 + 0.5)
            layer.norm.bias.copy_(torch.randn(C, generator=g))
    return layer


def reference(layer, feats, k, tau, with_norm, residual=True,
              conv_gn=False):
    """Independent restatement of 3DMF with an explicit loop.

    ``with_norm``: ``F.group_norm`` with the layer's GN affine params after
    the sum, else no norm at all. ``residual=False`` / ``conv_gn=True`` give
    wrong variants (no ``+ x_l``; an extra GN, weight 1 bias 0, after the
    3x3 conv).
    """
    w, b = layer.conv.weight, layer.conv.bias
    fs = [F.conv2d(x, w, b, stride=1, padding=1) for x in feats]
    if conv_gn:
        fs = [F.group_norm(f, 4) for f in fs]
    r = k // 2
    outs = []
    for lvl, x in enumerate(feats):
        n, c, h, wd = x.shape
        levels = [
            m for m in range(lvl - tau // 2, lvl + tau // 2 + 1)
            if 0 <= m < len(feats)
        ]
        resized = [
            F.interpolate(
                fs[m], size=(h, wd), mode='bilinear', align_corners=False)
            for m in levels
        ]
        pooled = torch.empty_like(x)
        for i in range(h):
            for j in range(wd):
                best = torch.full((n, c), float('-inf'))
                for fm in resized:
                    for ii in range(i - r, i + r + 1):
                        for jj in range(j - r, j + r + 1):
                            if 0 <= ii < h and 0 <= jj < wd:
                                best = torch.maximum(best, fm[:, :, ii, jj])
                pooled[:, :, i, j] = best
        y = pooled + x if residual else pooled
        if with_norm:
            y = F.group_norm(y, 4, layer.norm.weight, layer.norm.bias,
                             eps=layer.norm.eps)
        outs.append(F.relu(y))
    return outs


def assert_all_close(outs, refs):
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs):
        assert o.shape == r.shape
        assert torch.allclose(o, r, atol=1e-5), (o - r).abs().max()


def any_differs(outs, refs):
    return any(not torch.allclose(o, r, atol=1e-3) for o, r in zip(outs, refs))


@pytest.mark.parametrize('with_norm', [True, False])
def test_matches_reference_k3_tau2(with_norm):
    feats = make_feats()
    layer = make_layer(3, 2, with_norm)
    with torch.no_grad():
        outs = layer(feats)
        refs = reference(layer, feats, k=3, tau=2, with_norm=with_norm)
    assert [o.shape for o in outs] == [x.shape for x in feats]
    assert_all_close(outs, refs)
    # the ReLU is active on a good share of the outputs
    zero_share = float(
        torch.cat([(o == 0).float().flatten() for o in outs]).mean())
    assert 0.01 < zero_share < 0.99


@pytest.mark.parametrize('k,tau', [(1, 0), (1, 2), (3, 0), (5, 4)])
def test_matches_reference_other_kernels(k, tau):
    feats = make_feats()
    layer = make_layer(k, tau, with_norm=True)
    with torch.no_grad():
        refs = reference(layer, feats, k=k, tau=tau, with_norm=True)
        assert_all_close(layer(feats), refs)


@pytest.mark.parametrize('with_norm', [True, False])
def test_data_exercises_kernel_levels_norm_and_residual(with_norm):
    """Each ingredient changes the output on this data, so dropping it in
    the layer (k=1, tau=0, no residual, extra/missing norm) makes
    test_matches_reference_k3_tau2 fail."""
    feats = make_feats()
    layer = make_layer(3, 2, with_norm)
    with torch.no_grad():
        outs = layer(feats)
        ref = functools.partial(reference, layer, feats, with_norm=with_norm)
        assert any_differs(outs, ref(k=1, tau=2))
        assert any_differs(outs, ref(k=3, tau=0))
        assert any_differs(outs, ref(k=3, tau=2, residual=False))
        # an extra GN inside the conv
        assert any_differs(outs, ref(k=3, tau=2, conv_gn=True))
        if with_norm:
            # the output GN missing (same conv weights, no GN)
            layer_no_gn = make_layer(3, 2, with_norm=False)
            assert any_differs(outs, layer_no_gn(feats))
    # the k=3 window matters at many positions of every level, not just one
    for o, r in zip(outs, ref(k=1, tau=2)):
        assert (o - r).abs().gt(1e-3).float().mean() > 0.1


def count_norms(module):
    return sum(
        isinstance(m, (nn.GroupNorm, _BatchNorm, nn.LayerNorm,
                       nn.InstanceNorm2d)) for m in module.modules())


def test_structure_with_norm():
    layer = MaxFiltering3D(64)  # default norm_cfg: GN(32)
    assert count_norms(layer) == 1
    assert isinstance(layer.norm, nn.GroupNorm)
    assert layer.norm.num_groups == 32 and layer.norm.affine
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [layer.conv]
    assert layer.conv.bias is not None
    assert layer.conv.kernel_size == (3, 3) and layer.conv.padding == (1, 1)
    assert layer.conv.stride == (1, 1)
    assert layer.max_pool.kernel_size == (3, 3, 3)
    n_params = sum(p.numel() for p in layer.parameters())
    assert n_params == 64 * 64 * 9 + 64 + 2 * 64


def test_structure_without_norm():
    layer = MaxFiltering3D(64, with_norm=False)
    assert count_norms(layer) == 0
    assert getattr(layer, 'norm', None) is None
    assert layer.conv.bias is not None
    n_params = sum(p.numel() for p in layer.parameters())
    assert n_params == 64 * 64 * 9 + 64
    assert not any('norm' in name or 'gn' in name
                   for name, _ in layer.named_parameters())


def check_init(layer):
    w = layer.conv.weight.detach()
    assert 0.007 < float(w.std()) < 0.013
    assert abs(float(w.mean())) < 0.002
    assert torch.all(layer.conv.bias == 0)
    if getattr(layer, 'norm', None) is not None:
        assert torch.all(layer.norm.weight == 1)
        assert torch.all(layer.norm.bias == 0)


def spoil(layer):
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(3.0)


@pytest.mark.parametrize('with_norm', [True, False])
def test_init_weights(with_norm):
    torch.manual_seed(0)
    layer = MaxFiltering3D(32, with_norm=with_norm)
    check_init(layer)  # initialised at construction
    spoil(layer)
    layer.init_weights()
    check_init(layer)


class HeadLike(BaseModule):
    """A head stand-in: the layer as a child of a module with the init_cfg
    that POTOHead inherits from AnchorFreeHead (Normal on every Conv2d)."""

    def __init__(self, with_norm):
        super().__init__(init_cfg=copy.deepcopy(HEAD_INIT_CFG))
        self.max_filter = MaxFiltering3D(
            32, with_norm=with_norm,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
        self.conv_cls = nn.Conv2d(32, 1, 3, padding=1)  # init_cfg override


@pytest.mark.parametrize('with_norm', [True, False])
def test_init_through_head_init_cfg(with_norm):
    """The head's init_cfg (Normal(layer='Conv2d', std=0.01)) also reaches
    the layer's conv, and BaseModule.init_weights then calls the layer's own
    init_weights: the result is normal(0, 0.01), bias 0, GN 1/0."""
    assert HEAD_INIT_CFG['type'] == 'Normal'
    assert HEAD_INIT_CFG['layer'] == 'Conv2d'
    torch.manual_seed(0)
    head = HeadLike(with_norm)
    spoil(head.max_filter)
    head.init_weights()
    check_init(head.max_filter)
