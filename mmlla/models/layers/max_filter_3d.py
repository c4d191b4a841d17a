"""3D max filtering (3DMF) of DeFCN."""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from mmengine.model import constant_init, normal_init
from torch import Tensor

from .norm_defaults import DEFAULT_NORM


@MODELS.register_module()
class MaxFiltering3D(nn.Module):
    """Max filtering across space and neighbouring FPN levels (DeFCN 3DMF).

    For every level ``l`` with input ``x_l`` of shape (N, C, H_l, W_l):

    1. ``f_l = conv3x3(x_l)``: one plain 3x3 conv (stride 1, padding 1, with
       bias, no norm, no activation) shared by all levels; (N, C, H_l, W_l).
    2. The ``f`` of levels ``l - tau//2 .. l + tau//2`` that exist are
       resized bilinearly (``align_corners=False``) to (H_l, W_l) and
       stacked on a new scale axis: (N, C, S, H_l, W_l) with
       ``S <= tau + 1``.
    3. A 3D max pool of kernel ``(tau + 1, k, k)``, stride 1, padding
       ``(tau // 2, k // 2, k // 2)`` (padding never wins a max) is applied
       and the slice of level ``l`` is kept: ``maxpool_l``, (N, C, H_l, W_l).
    4. ``out_l = ReLU(GN(maxpool_l + x_l))`` with one GN shared by all
       levels; with ``with_norm=False`` (DeFCN's "remove GN in 3DMF" rows)
       ``out_l = ReLU(maxpool_l + x_l)``. There is no other norm.

    The conv is initialised normal(0, 0.01) with bias 0, the GN with weight 1
    and bias 0 (:meth:`init_weights`, also called at construction).

    Args:
        in_channels (int): Channels ``C`` of every level; kept by the layer.
        kernel_size (int): Spatial max-pool kernel ``k`` (odd). Defaults
            to 3.
        tau (int): Scale extent; the pool spans ``tau + 1`` levels (even).
            Defaults to 2.
        with_norm (bool): Apply the GN after the residual sum. False drops
            it (no norm module at all). Defaults to True.
        norm_cfg (dict): Config of that norm. Defaults to GN with 32 groups.
    """

    def __init__(self,
                 in_channels: int,
                 kernel_size: int = 3,
                 tau: int = 2,
                 with_norm: bool = True,
                 norm_cfg: ConfigType = DEFAULT_NORM) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.tau = tau
        self.margin = tau // 2
        self.with_norm = with_norm
        self.conv = nn.Conv2d(
            in_channels, in_channels, 3, padding=1, bias=True)
        if with_norm:
            self.norm = build_norm_layer(norm_cfg, in_channels)[1]
        else:
            self.norm = None
        self.relu = nn.ReLU(inplace=True)
        self.max_pool = nn.MaxPool3d(
            kernel_size=(tau + 1, kernel_size, kernel_size),
            stride=1,
            padding=(tau // 2, kernel_size // 2, kernel_size // 2))
        self.init_weights()

    def init_weights(self) -> None:
        """Conv normal(0, 0.01) with bias 0; GN weight 1, bias 0."""
        normal_init(self.conv, mean=0, std=0.01, bias=0)
        if self.norm is not None:
            constant_init(self.norm, 1, bias=0)

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Filter every level.

        Args:
            feats (sequence[Tensor]): Per level (N, C, H_l, W_l).

        Returns:
            list[Tensor]: Per level ``out_l``, (N, C, H_l, W_l).
        """
        convs = [self.conv(x) for x in feats]
        outs = []
        for lvl, x in enumerate(feats):
            size = x.shape[-2:]
            lo = max(0, lvl - self.margin)
            hi = min(len(feats), lvl + self.margin + 1)
            stack = [
                convs[k] if k == lvl else F.interpolate(
                    convs[k], size=size, mode='bilinear', align_corners=False)
                for k in range(lo, hi)
            ]
            # Only level l's slice is kept, and the stack is exactly the
            # levels that its (tau + 1)-deep window covers: pool that one
            # slice (kernel depth = stack depth, no depth padding) instead
            # of all of them. Same window, same scan order, hence the same
            # values and the same argmax (gradient routing) as
            # ``self.max_pool(stack)[:, :, lvl - lo]``, 2-3x less work.
            pool = self.max_pool
            pooled = F.max_pool3d(
                torch.stack(stack, dim=2),
                kernel_size=(hi - lo, *pool.kernel_size[1:]),
                stride=pool.stride,
                padding=(0, *pool.padding[1:]))[:, :, 0]
            out = pooled + x
            if self.norm is not None:
                out = self.norm(out)
            outs.append(self.relu(out))
        return outs
