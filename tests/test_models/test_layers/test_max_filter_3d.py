"""MaxFiltering3D: shapes, the tau=0/k=1 reduction, the cross-level max."""
import torch
import torch.nn.functional as F

from mmlla.models.layers import MaxFiltering3D

GN4 = dict(type='GN', num_groups=4, requires_grad=True)


def feats():
    torch.manual_seed(0)
    return [torch.randn(2, 8, s, s + 1) for s in (8, 4, 2)]


def test_output_shapes():
    layer = MaxFiltering3D(8, kernel_size=3, tau=2, norm_cfg=GN4)
    x = feats()
    out = layer(x)
    assert [o.shape for o in out] == [f.shape for f in x]
    assert all((o >= 0).all() for o in out)  # ends with ReLU


def test_tau0_k1_is_conv_plus_residual():
    x = feats()
    for with_norm in (True, False):
        layer = MaxFiltering3D(
            8, kernel_size=1, tau=0, with_norm=with_norm, norm_cfg=GN4)
        out = layer(x)
        for o, f in zip(out, x):
            y = F.conv2d(f, layer.conv.conv.weight, layer.conv.conv.bias,
                         padding=1)
            if with_norm:
                y = F.group_norm(y, 4, layer.conv.gn.weight,
                                 layer.conv.gn.bias)
            ref = F.relu(
                F.group_norm(y + f, 4, layer.norm.weight, layer.norm.bias))
            assert torch.allclose(o, ref, atol=1e-5)
        assert hasattr(layer.conv, 'gn') == with_norm


def test_max_over_neighbouring_levels():
    """tau=2, k=1: level l's output takes the max of the conv features of
    levels l-1, l, l+1 resized to level l (computed here independently)."""
    x = feats()
    layer = MaxFiltering3D(8, kernel_size=1, tau=2, with_norm=False,
                           norm_cfg=GN4)
    out = layer(x)
    ys = [layer.conv(f) for f in x]
    for lvl, f in enumerate(x):
        size = f.shape[-2:]
        nbrs = [
            F.interpolate(ys[k], size=size, mode='bilinear')
            if k != lvl else ys[k]
            for k in range(max(0, lvl - 1), min(3, lvl + 2))
        ]
        pooled = torch.stack(nbrs).max(dim=0).values
        ref = F.relu(
            F.group_norm(pooled + f, 4, layer.norm.weight, layer.norm.bias))
        assert torch.allclose(out[lvl], ref, atol=1e-5)
