"""DA3's DINOv2 backbone with alternating local (per view) and global (all views) attention.

Schedule: blocks before alt_start are local; from alt_start on, odd blocks
are global and even blocks local, all with QK-norm and RoPE. The camera token replaces token 0
of every view just before block alt_start.

Reference view: the official code moves the chosen view to slot 0 (where the learned reference
camera token goes), runs the blocks, and puts the outputs back in input order. Every block is
equivariant to the order of the views (local attention is per view; global attention sees all
patch tokens at one RoPE position), so here the reference token goes straight to the chosen
view's slot and nothing is reordered: the same function, without six gathers of the tokens
(results differ only by the order of floating-point sums in global attention).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from da3_ros.model.layers import Block
from da3_ros.model.positional import resize_pos_embed, rope_tables
from da3_ros.model.reference_view import MIN_VIEWS_FOR_SELECTION, select_reference_view
from da3_ros.model.variants import PATCH_PX, BackboneSpec

_PRETRAIN_GRID = 37       # pos_embed was trained for 518 x 518 = 37 x 37 patches


class BackboneOutput(NamedTuple):
    features: list[Tensor]        # 4 x (B, S, ph*pw, out_dim): raw local half, normed global half
    camera_tokens: list[Tensor]   # 4 x (B, S, out_dim): raw token 0 of each output layer


class PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH_PX, stride=PATCH_PX)

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> (N, ph*pw, C), row-major patches."""
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """The `backbone.pretrained` module of the checkpoints."""

    def __init__(self, spec: BackboneSpec):
        super().__init__()
        self.spec = spec
        dim = spec.embed_dim
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if spec.alt_start != -1:
            self.camera_token = nn.Parameter(torch.randn(1, 2, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + _PRETRAIN_GRID ** 2, dim))
        self.blocks = nn.ModuleList([
            Block(dim, spec.num_heads, spec.ffn, qk_norm=self._rotary(i))
            for i in range(spec.depth)])
        self.norm = nn.LayerNorm(dim)

    def _rotary(self, i: int) -> bool:
        return self.spec.alt_start != -1 and i >= self.spec.alt_start

    def _is_global(self, i: int) -> bool:
        return self._rotary(i) and i % 2 == 1

    def tokens(self, x: Tensor) -> Tensor:
        """(B, S, 3, H, W) normalised images -> (B, S, T, C) tokens with cls and pos-embed."""
        B, S, _, H, W = x.shape
        patches = self.patch_embed(x.reshape(B * S, 3, H, W))
        cls = self.cls_token.expand(B * S, -1, -1)
        pos = resize_pos_embed(self.pos_embed, H // PATCH_PX, W // PATCH_PX)
        return (torch.cat([cls, patches], dim=1) + pos).reshape(B, S, -1, patches.shape[-1])

    def _camera_token(self, B: int, S: int, ref: Tensor | None) -> Tensor:
        """(B, S, C): the learned reference token at each batch item's reference view
        (ref (B,) int64, None = view 0), the shared one at the other views."""
        views = torch.arange(S, device=self.camera_token.device)[None]
        is_ref = views == (0 if ref is None else ref[:, None])
        return torch.where(is_ref[..., None], self.camera_token[:, :1],
                           self.camera_token[:, 1:]).expand(B, S, -1)

    def forward(self, x: Tensor, cam_token: Tensor | None = None,
                ref_view_strategy: str = 'saddle_balanced') -> BackboneOutput:
        """x: (B, S, 3, H, W) normalised; cam_token: (B, S, C) from the camera encoder or None."""
        spec = self.spec
        B, S, _, H, W = x.shape
        ph, pw = H // PATCH_PX, W // PATCH_PX
        head_dim = spec.embed_dim // spec.num_heads
        cos_l, sin_l, cos_g, sin_g = rope_tables(ph, pw, head_dim, device=x.device)
        local_rope = (cos_l.to(x.dtype), sin_l.to(x.dtype))
        global_rope = (cos_g.repeat(S, 1).to(x.dtype), sin_g.repeat(S, 1).to(x.dtype))
        x = self.tokens(x)
        T, C = x.shape[2:]
        local_x, ref, outputs = x, None, []
        for i, block in enumerate(self.blocks):
            if (i == spec.alt_start - 1 and S >= MIN_VIEWS_FOR_SELECTION and cam_token is None):
                ref = select_reference_view(x, ref_view_strategy)
            if i == spec.alt_start:
                token = cam_token if cam_token is not None else self._camera_token(B, S, ref)
                x = torch.cat([token[:, :, None].to(x.dtype), x[:, :, 1:]], dim=2)
            if self._is_global(i):
                x = block(x.reshape(B, S * T, C), global_rope).reshape(B, S, T, C)
            else:
                x = block(x.reshape(B * S, T, C), local_rope if self._rotary(i) else None)
                x = local_x = x.reshape(B, S, T, C)
            if i in spec.out_layers:
                outputs.append(torch.cat([local_x, x], dim=-1) if spec.cat_token else x)
        return self._normalise(outputs)

    def _normalise(self, outputs: list[Tensor]) -> BackboneOutput:
        """Final LN on the global half only (or on all of it without cat_token), drop token 0."""
        C = self.spec.embed_dim
        features = []
        for out in outputs:
            normed = (torch.cat([out[..., :C], self.norm(out[..., C:])], dim=-1)
                      if self.spec.cat_token else self.norm(out))
            features.append(normed[:, :, 1:])
        return BackboneOutput(features, [out[:, :, 0] for out in outputs])


class Backbone(nn.Module):
    """Wrapper that gives the checkpoint prefix `backbone.pretrained.`."""

    def __init__(self, spec: BackboneSpec):
        super().__init__()
        self.pretrained = VisionTransformer(spec)

    def forward(self, x: Tensor, cam_token: Tensor | None = None,
                ref_view_strategy: str = 'saddle_balanced') -> BackboneOutput:
        return self.pretrained(x, cam_token, ref_view_strategy)
