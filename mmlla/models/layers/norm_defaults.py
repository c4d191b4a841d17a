"""The norm config shared by the mmlla heads and 3DMF.

FCOS, DeFCN and LLA put GroupNorm with 32 groups (learnable affine) after
every tower conv, and DeFCN's 3DMF uses the same GN after its residual sum
(docs/algorithms.md sections 1 and 3). Callers pass it to mmcv's
``build_norm_layer``, which copies it, so the one dict is never mutated.
"""

DEFAULT_NORM = dict(type='GN', num_groups=32, requires_grad=True)
