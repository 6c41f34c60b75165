"""DPT building blocks: per-stage projection/resizing and the top-down refinement chain."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ResidualConvUnit(nn.Module):
    """z + conv2(relu(conv1(relu(z)))); the skip uses the un-activated z."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv2 = nn.Conv2d(features, features, 3, 1, 1)

    def forward(self, z: Tensor) -> Tensor:
        return z + self.conv2(F.relu(self.conv1(F.relu(z))))


class FusionBlock(nn.Module):
    """y (+ RCU1(lateral)) -> RCU2 -> bilinear resize (align_corners) -> 1x1 out_conv.

    The 1x1 out_conv runs before the resize here: both are linear, the conv mixes channels per
    pixel and the resize mixes pixels per channel with weights summing to 1 (the bias passes
    through), so they commute; at the lower resolution the conv costs a quarter.
    """

    def __init__(self, features: int, has_residual: bool = True):
        super().__init__()
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, y: Tensor, lateral: Tensor | None = None,
                size: tuple[int, int] | None = None) -> Tensor:
        """size None doubles the resolution."""
        if lateral is not None:
            y = y + self.resConfUnit1(lateral)
        y = self.resConfUnit2(y)
        size = size or (2 * y.shape[-2], 2 * y.shape[-1])
        return F.interpolate(self.out_conv(y), size=size, mode='bilinear', align_corners=True)


def make_projects(dim_in: int, out_channels: tuple[int, ...]) -> nn.ModuleList:
    """1x1 convs from token width to each stage's channels."""
    return nn.ModuleList([nn.Conv2d(dim_in, oc, 1) for oc in out_channels])


def make_resize_layers(out_channels: tuple[int, ...]) -> nn.ModuleList:
    """Stage resamplers relative to the patch grid: x4, x2, x1, /2 (ceil)."""
    return nn.ModuleList([
        nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
        nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
        nn.Identity(),
        nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
    ])


def make_scratch(out_channels: tuple[int, ...], features: int, suffixes=('',)) -> nn.Module:
    """`scratch` with layer{1..4}_rn (3x3, no bias) and one refinenet chain per suffix."""
    scratch = nn.Module()
    for level, channels in enumerate(out_channels, start=1):
        setattr(scratch, f'layer{level}_rn', nn.Conv2d(channels, features, 3, 1, 1, bias=False))
    for suffix in suffixes:
        for level in range(1, 5):
            setattr(scratch, f'refinenet{level}{suffix}', FusionBlock(features, level != 4))
    return scratch


def fuse(laterals: list[Tensor], refine: list[nn.Module]) -> Tensor:
    """Top-down fusion of 4 lateral maps (fine -> coarse) with refinenets 1..4.

    returns the map at twice the finest lateral's resolution (8ph x 8pw)
    """
    l1, l2, l3, l4 = laterals
    out = refine[3](l4, size=l3.shape[-2:])
    out = refine[2](out, l3, size=l2.shape[-2:])
    out = refine[1](out, l2, size=l1.shape[-2:])
    return refine[0](out, l1)
