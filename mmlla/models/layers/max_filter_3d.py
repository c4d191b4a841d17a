"""3D max filtering (3DMF) of DeFCN."""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor

DEFAULT_NORM = dict(type='GN', num_groups=32, requires_grad=True)


@MODELS.register_module()
class MaxFiltering3D(nn.Module):
    """Max filtering across space and neighbouring FPN levels.

    For each level ``l``: ``y_l = conv3x3(x_l)`` (+ GN when ``with_norm``);
    the ``y`` of levels ``l - tau//2 .. l + tau//2`` that exist are resized
    bilinearly to level ``l``'s size and stacked on a scale axis; a 3D max
    pool of kernel ``(tau + 1, k, k)``, stride 1, "same" padding is applied
    and level ``l``'s slice is kept; the output is
    ``ReLU(GN(max_pooled + x_l))``.

    Args:
        in_channels (int): channels of every level (kept).
        kernel_size (int): spatial kernel ``k``. Defaults to 3.
        tau (int): scale extent; the kernel spans ``tau + 1`` levels.
            Defaults to 2.
        with_norm (bool): GN after the 3x3 conv (False = DeFCN's "remove GN
            in 3DMF" row). Defaults to True.
        norm_cfg (dict): the norm of the conv and of the output.
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
        self.conv = ConvModule(
            in_channels,
            in_channels,
            3,
            padding=1,
            norm_cfg=norm_cfg if with_norm else None,
            act_cfg=None)
        self.norm = build_norm_layer(norm_cfg, in_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.max_pool = nn.MaxPool3d(
            kernel_size=(tau + 1, kernel_size, kernel_size),
            stride=1,
            padding=(tau // 2, kernel_size // 2, kernel_size // 2))

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Filter every level.

        Args:
            feats (sequence[Tensor]): per level (N, C, H_l, W_l).

        Returns:
            list[Tensor]: per level (N, C, H_l, W_l).
        """
        convs = [self.conv(x) for x in feats]
        outs = []
        for lvl, x in enumerate(feats):
            size = x.shape[-2:]
            lo = max(0, lvl - self.margin)
            hi = min(len(feats), lvl + self.margin + 1)
            stack = [
                convs[k] if k == lvl else F.interpolate(
                    convs[k], size=size, mode='bilinear')
                for k in range(lo, hi)
            ]
            pooled = self.max_pool(torch.stack(stack, dim=2))[:, :,
                                                               lvl - lo]
            outs.append(self.relu(self.norm(pooled + x)))
        return outs
