"""Transformer building blocks shared by the backbone and the camera encoder.

Module and attribute names follow the official checkpoints (qkv, q_norm, ls1.gamma, mlp.fc1,
mlp.w12, ...), so state dicts load with strict=True. Pure PyTorch: no xformers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from da3_ros.model import qk_norm_rope
from da3_ros.model.positional import apply_rope


class Attention(nn.Module):
    """Multi-head self-attention with optional QK-norm and 2-D RoPE (applied after the norm).

    On CUDA with Triton the norm and the rotation run as one kernel (model/qk_norm_rope.py,
    the same function)."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = False):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """x: (B, N, C); rope: (cos, sin) tables of shape (N, head_dim) or None."""
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if (rope is not None and isinstance(self.q_norm, nn.LayerNorm)
                and qk_norm_rope.available(qkv)):
            q, k = qk_norm_rope.qk_norm_rope(qkv, self.q_norm, self.k_norm, *rope)
        else:
            q, k = self.q_norm(q), self.k_norm(k)
            if rope is not None:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    """fc1 -> GELU (exact erf) -> fc2."""

    def __init__(self, dim: int, hidden: int, out: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out or dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """w12 -> (a, b) -> SiLU(a) * b -> w3, hidden (int(4C * 2/3) + 7) // 8 * 8 as in ViT-g."""

    def __init__(self, dim: int, mlp_ratio: int = 4):
        super().__init__()
        hidden = (int(dim * mlp_ratio * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class LayerScale(nn.Module):
    """Per-channel learned residual scale."""

    def __init__(self, dim: int, init_value: float = 1.0):
        super().__init__()
        self.gamma = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1 x)), then x + ls2(ffn(norm2 x)).

    norm_eps is 1e-6 in the backbone and 1e-5 in the camera encoder's trunk.
    """

    def __init__(self, dim: int, num_heads: int, ffn: str = 'mlp', qk_norm: bool = False,
                 norm_eps: float = 1e-6, ls_init: float = 1.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm)
        self.ls1 = LayerScale(dim, ls_init)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = SwiGLU(dim) if ffn == 'swiglu' else Mlp(dim, 4 * dim)
        self.ls2 = LayerScale(dim, ls_init)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))
