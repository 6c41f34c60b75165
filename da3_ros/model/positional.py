"""Position encodings computed for the actual input size: pos-embed resize, 2-D RoPE, UV embed.

Everything here depends only on integer sizes (and, for the pos-embed, on a weight), so a traced
graph needs none of the ops that compute it: under torch.jit tracing (the TorchScript ONNX
exporter) `resize_pos_embed`, `rope_tables` and `uv_embed` run untraced and their results enter
the graph as constants. The file then holds no ScatterElements with a reduction (a TensorRT
plugin), no float64 tensors, no 3-input Einsum and no ScatterND; eager, torch.compile and CUDA
graphs run the torch ops below unchanged. No interpolate-with-scale-factor, no data-dependent
table lengths, no Python-side caches.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

_CUBIC_A = -0.75          # PyTorch's bicubic kernel (Keys, a = -0.75)
_POS_EMBED_OFFSET = 0.1   # DINOv2's historical +0.1 on the scale factor
ROPE_BASE = 100.0
UV_OMEGA_BASE = 100.0
UV_RATIO = 0.1


def trace_constant(fn):
    """Decorator: while torch.jit traces (and torch.compile does not), run fn with tracing
    switched off, so its tensor results are baked into the trace as constants (detached).
    fn's tensor arguments may be weights only (pos_embed): a graph input passed here would be
    frozen to the example's values."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if torch.compiler.is_compiling() or not torch.jit.is_tracing():
            return fn(*args, **kwargs)
        state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)
        try:
            out = fn(*args, **kwargs)
        finally:
            torch._C._set_tracing_state(state)
        if isinstance(out, tuple):
            return tuple(t.detach() for t in out)
        return out.detach()

    return wrapper


def _cubic_weights(t: Tensor) -> Tensor:
    """Keys cubic weights of the 4 taps at offsets -1, 0, 1, 2 for fractional positions t (N,)."""
    a = _CUBIC_A
    d = torch.stack([t + 1.0, t, 1.0 - t, 2.0 - t], dim=1)
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    return torch.where(d <= 1.0, near, far)


def bicubic_resize_matrix(n_out: int, n_in: int, device=None) -> Tensor:
    """(n_out, n_in) float64 matrix equal to F.interpolate(mode='bicubic', align_corners=False)
    with scale_factor (n_out + 0.1) / n_in along one axis (borders clamped).

    Torch ops only, so torch.compile and CUDA graphs keep it in the graph (no host copy)."""
    scale = n_in / (n_out + _POS_EMBED_OFFSET)
    src = (torch.arange(n_out, dtype=torch.float64, device=device) + 0.5) * scale - 0.5
    base = torch.floor(src)
    weights = _cubic_weights(src - base)
    taps = (base[:, None].long() + torch.arange(-1, 3, device=device)[None, :]).clamp(0, n_in - 1)
    out = torch.zeros(n_out, n_in, dtype=torch.float64, device=device)
    return out.scatter_add_(1, taps, weights)


@trace_constant
def resize_pos_embed(pos_embed: Tensor, ph: int, pw: int, grid: int = 37) -> Tensor:
    """Resample DINOv2's square patch pos-embed grid to ph x pw patches.

    pos_embed: (1, 1 + grid*grid, C), token 0 is the cls slot
    returns (1, 1 + ph*pw, C) in pos_embed's dtype; skipped only for a grid x grid input
    (518 x 518). Sizes are taken as Python ints: a traced graph holds the result as a constant.
    """
    ph, pw = int(ph), int(pw)
    if ph == grid and pw == grid:
        return pos_embed
    patch = pos_embed[0, 1:].float().reshape(grid, grid, -1)
    rows = bicubic_resize_matrix(ph, grid, pos_embed.device).float()
    cols = bicubic_resize_matrix(pw, grid, pos_embed.device).float()
    resized = torch.einsum('yi,ijc,xj->yxc', rows, patch, cols).reshape(1, ph * pw, -1)
    cls = pos_embed[:, :1].float()
    return torch.cat([cls, resized], dim=1).to(pos_embed.dtype)


def _rope_angles(positions: Tensor, head_dim: int) -> Tensor:
    """Angles (N, head_dim) for integer (y, x) positions (N, 2): first half rotated by y, second
    by x; inside each half the frequency vector is duplicated (pairs (j, j + d/2))."""
    half = head_dim // 2
    inv_freq = 1.0 / (ROPE_BASE ** (torch.arange(0, half, 2, device=positions.device).float()
                                    / half))
    per_axis = []
    for axis in (0, 1):
        angles = positions[:, axis].float()[:, None] * inv_freq[None, :]
        per_axis.append(torch.cat([angles, angles], dim=-1))
    return torch.cat(per_axis, dim=-1)


@trace_constant
def rope_tables(ph: int, pw: int, head_dim: int, device=None) -> tuple[Tensor, Tensor, Tensor,
                                                                         Tensor]:
    """cos/sin tables for one view's T = 1 + ph*pw tokens.

    Local layout: token 0 at (0, 0), patch (r, c) at (r + 1, c + 1), row-major.
    Global layout: token 0 at (0, 0), every patch at (1, 1).
    returns (cos_local, sin_local, cos_global, sin_global), each (T, head_dim) float32
    """
    ph, pw = int(ph), int(pw)
    rows = torch.arange(ph, device=device).repeat_interleave(pw)
    cols = torch.arange(pw, device=device).repeat(ph)
    local = torch.cat([torch.zeros(1, 2, dtype=torch.long, device=device),
                       torch.stack([rows, cols], dim=1) + 1])
    glob = torch.ones_like(local)
    glob[0] = 0
    local_angles, global_angles = _rope_angles(local, head_dim), _rope_angles(glob, head_dim)
    return local_angles.cos(), local_angles.sin(), global_angles.cos(), global_angles.sin()


def apply_rope(t: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate query/key features t (..., N, D) with tables (N, D); each D/2 half is rotated as
    [a, b] -> [-b, a] on its own quarters."""
    quarters = t.unflatten(-1, (2, 2, t.shape[-1] // 4))
    rotated = torch.stack([-quarters[..., 1, :], quarters[..., 0, :]], dim=-2).flatten(-3)
    return t * cos + rotated * sin


def _sincos(values: Tensor, dim: int) -> Tensor:
    """(M,) positions -> (M, dim) [sin(p w), cos(p w)] with w_k = 100^(-k / (dim/2))."""
    omega = torch.arange(dim // 2, dtype=torch.float32, device=values.device)
    omega = 1.0 / UV_OMEGA_BASE ** (omega / (dim / 2.0))
    angles = values.reshape(-1)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


@trace_constant
def uv_embed(h: int, w: int, channels: int, aspect: float, dtype=torch.float32,
             device=None) -> Tensor:
    """DPT's UV positional embedding for an h x w feature map of an image with W/H = aspect.

    returns (channels, h, w), already multiplied by 0.1
    """
    h, w, channels, aspect = int(h), int(w), int(channels), float(aspect)
    diag = (aspect ** 2 + 1.0) ** 0.5
    span_x, span_y = aspect / diag, 1.0 / diag
    xs = torch.linspace(-span_x * (w - 1) / w, span_x * (w - 1) / w, w, dtype=dtype, device=device)
    ys = torch.linspace(-span_y * (h - 1) / h, span_y * (h - 1) / h, h, dtype=dtype, device=device)
    # The first half of the channels depends on the column only, the second on the row only:
    # sin/cos on w + h positions, broadcast (the official evaluates them on all h * w).
    per_col = (_sincos(xs, channels // 2) * UV_RATIO).T          # (channels/2, w)
    per_row = (_sincos(ys, channels // 2) * UV_RATIO).T          # (channels/2, h)
    half = channels // 2
    return torch.cat([per_col[:, None, :].expand(half, h, w),
                      per_row[:, :, None].expand(half, h, w)], dim=0)
