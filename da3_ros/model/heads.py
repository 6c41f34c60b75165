"""Dense heads: DualDPT (depth + rays, any-view models), DPT (depth + sky), GS-DPT (GIANT).

All three share the DPT trunk: per-stage LN/projection/resize, then top-down fusion.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from da3_ros.model.fusion import fuse, make_projects, make_resize_layers, make_scratch
from da3_ros.model.positional import uv_embed
from da3_ros.model.variants import PATCH_PX

_HIDDEN = 32      # channels of the last 3x3 conv of every output branch
_RAY_CHANNELS = 7  # 3 direction + 3 origin + 1 confidence


class Permute(nn.Module):
    """Tensor.permute as a module (keeps the official Sequential indices)."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(*self.dims)


def add_uv(x: Tensor, H: int, W: int) -> Tensor:
    """Add the UV embedding of x's (h, w) grid for an H x W image; x: (N, C, h, w)."""
    uv = uv_embed(x.shape[-2], x.shape[-1], x.shape[1], W / H, torch.float32, x.device)
    return x + uv.to(x.dtype)[None]


class DPTTrunk(nn.Module):
    """Token norm, per-stage projection (+UV), resizing and the first 3x3 `layer*_rn` convs."""

    def __init__(self, dim_in: int, features: int, out_channels: tuple[int, ...],
                 token_norm: bool, uv: bool, chains=('',)):
        super().__init__()
        self.norm = nn.LayerNorm(dim_in) if token_norm else nn.Identity()
        self.projects = make_projects(dim_in, out_channels)
        self.resize_layers = make_resize_layers(out_channels)
        self.scratch = make_scratch(out_channels, features, chains)
        self.uv = uv

    def laterals(self, features: list[Tensor], H: int, W: int) -> list[Tensor]:
        """4 x (N, P, C) patch tokens -> 4 lateral maps at 4ph, 2ph, ph, ceil(ph/2)."""
        ph, pw = H // PATCH_PX, W // PATCH_PX
        out = []
        for stage, tokens in enumerate(features):
            x = self.norm(tokens).transpose(1, 2).reshape(tokens.shape[0], -1, ph, pw)
            x = self.projects[stage](x)
            if self.uv:
                x = add_uv(x, H, W)
            x = self.resize_layers[stage](x)
            out.append(getattr(self.scratch, f'layer{stage + 1}_rn')(x))
        return out

    def refine(self, chain: str = '') -> list[nn.Module]:
        return [getattr(self.scratch, f'refinenet{level}{chain}') for level in range(1, 5)]


class DualDPTOutput(NamedTuple):
    depth: Tensor               # (N, H, W) exp
    depth_conf: Tensor          # (N, H, W) exp + 1
    ray: Tensor | None = None   # (N, 8ph, 8pw, 6) linear: direction xyz, origin xyz (world)
    ray_conf: Tensor | None = None  # (N, 8ph, 8pw) exp + 1


class DualDPT(DPTTrunk):
    """Main branch -> depth + confidence at H x W; aux branch -> rays at 8ph x 8pw."""

    def __init__(self, dim_in: int, features: int, out_channels: tuple[int, ...]):
        super().__init__(dim_in, features, out_channels, token_norm=True, uv=True,
                         chains=('', '_aux'))
        half = features // 2
        s = self.scratch
        s.output_conv1 = nn.Conv2d(features, half, 3, 1, 1)
        s.output_conv2 = nn.Sequential(nn.Conv2d(half, _HIDDEN, 3, 1, 1), nn.ReLU(),
                                       nn.Conv2d(_HIDDEN, 2, 1))
        # Four aux levels exist in the checkpoints; inference uses only the last one.
        s.output_conv1_aux = nn.ModuleList([nn.Sequential(
            nn.Conv2d(features, half, 3, 1, 1), nn.Conv2d(half, features, 3, 1, 1),
            nn.Conv2d(features, half, 3, 1, 1), nn.Conv2d(half, features, 3, 1, 1),
            nn.Conv2d(features, half, 3, 1, 1)) for _ in range(4)])
        shared_ln = nn.LayerNorm(_HIDDEN)   # one module tied across the 4 levels, as upstream
        s.output_conv2_aux = nn.ModuleList([nn.Sequential(
            nn.Conv2d(half, _HIDDEN, 3, 1, 1), Permute((0, 2, 3, 1)), shared_ln,
            Permute((0, 3, 1, 2)), nn.ReLU(), nn.Conv2d(_HIDDEN, _RAY_CHANNELS, 1))
            for _ in range(4)])

    def forward(self, features: list[Tensor], H: int, W: int,
                rays: bool = True) -> DualDPTOutput:
        """features: 4 x (N, ph*pw, dim_in) with N = B*S.

        rays=False skips the ray branch (its own refinement chain and 7 convolutions at
        8ph x 8pw, about 1.3 of DA3-LARGE's 5.7 TFLOP at 6 x 280 x 504): ray and ray_conf are
        then None. Depth and confidence do not depend on it.
        """
        laterals = self.laterals(features, H, W)
        s = self.scratch
        main = s.output_conv1(fuse(laterals, self.refine()))
        main = add_uv(F.interpolate(main, size=(H, W), mode='bilinear', align_corners=True), H, W)
        logits = s.output_conv2(main)
        depth, depth_conf = logits[:, 0].exp(), logits[:, 1].exp() + 1
        if not rays:
            return DualDPTOutput(depth, depth_conf)
        aux = s.output_conv1_aux[3](fuse(laterals, self.refine('_aux')))
        aux = s.output_conv2_aux[3](add_uv(aux, H, W)).permute(0, 2, 3, 1)
        return DualDPTOutput(depth, depth_conf, aux[..., :6], aux[..., 6].exp() + 1)


class DPTOutput(NamedTuple):
    depth: Tensor  # (N, H, W) exp
    sky: Tensor    # (N, H, W) relu score; sky where >= 0.3


class DPT(DPTTrunk):
    """Monocular head of DA3METRIC / DA3MONO: depth and a sky score, no UV embedding."""

    def __init__(self, dim_in: int, features: int, out_channels: tuple[int, ...]):
        super().__init__(dim_in, features, out_channels, token_norm=False, uv=False)
        half = features // 2
        s = self.scratch
        s.output_conv1 = nn.Conv2d(features, half, 3, 1, 1)
        s.output_conv2 = nn.Sequential(nn.Conv2d(half, _HIDDEN, 3, 1, 1), nn.ReLU(),
                                       nn.Conv2d(_HIDDEN, 1, 1))
        s.sky_output_conv2 = nn.Sequential(nn.Conv2d(half, _HIDDEN, 3, 1, 1), nn.ReLU(),
                                           nn.Conv2d(_HIDDEN, 1, 1))

    def forward(self, features: list[Tensor], H: int, W: int) -> DPTOutput:
        s = self.scratch
        fused = s.output_conv1(fuse(self.laterals(features, H, W), self.refine()))
        fused = F.interpolate(fused, size=(H, W), mode='bilinear', align_corners=True)
        sky = F.relu(s.sky_output_conv2(fused)[:, 0])
        return DPTOutput(s.output_conv2(fused)[:, 0].exp(), sky)


class GSDPT(DPTTrunk):
    """GIANT's Gaussian-splat head (weights kept for checkpoint compatibility).

    Its forward returns the 38 raw Gaussian channels; the official GaussianAdapter that turns
    them into world-space splats is not part of da3_ros.
    """

    def __init__(self, dim_in: int, features: int, out_channels: tuple[int, ...],
                 out_dim: int = 38):
        super().__init__(dim_in, features, out_channels, token_norm=False, uv=True)
        half = features // 2
        s = self.scratch
        s.output_conv1 = nn.Conv2d(features, half, 3, 1, 1)
        s.output_conv2 = nn.Sequential(nn.Conv2d(half, _HIDDEN, 3, 1, 1), nn.ReLU(),
                                       nn.Conv2d(_HIDDEN, out_dim, 1))
        self.images_merger = nn.Sequential(
            nn.Conv2d(3, half // 4, 3, 1, 1), nn.GELU(), nn.Conv2d(half // 4, half // 2, 3, 1, 1),
            nn.GELU(), nn.Conv2d(half // 2, half, 3, 1, 1), nn.GELU())

    def forward(self, features: list[Tensor], images: Tensor, H: int, W: int) -> Tensor:
        """images: (N, 3, H, W) normalised -> (N, out_dim, H, W) raw logits."""
        s = self.scratch
        fused = s.output_conv1(fuse(self.laterals(features, H, W), self.refine()))
        fused = F.interpolate(fused, size=(H, W), mode='bilinear', align_corners=True)
        return s.output_conv2(add_uv(fused + self.images_merger(images), H, W))


