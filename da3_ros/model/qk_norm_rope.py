"""Q/K LayerNorm + 2-D RoPE of the rotary blocks as one Triton kernel (CUDA only).

    q, k = qk_norm_rope(qkv, q_norm, k_norm, cos, sin)     # qkv: (B, N, 3, heads, D) on CUDA

The same function as the eager path of layers.Attention (q_norm / k_norm, then
positional.apply_rope, then the cast attention's inputs get under autocast), computed in float32
and rounded once to qkv's dtype. Eager PyTorch runs it as ~10 kernels per block and Inductor as
three (two q/k norms writing float32, one rotation reading them back: 0.75 ms of a DA3-LARGE
6 x 280 x 504 call on an H100); here one kernel reads q and k once and writes them once in the
(B, heads, N, D) layout attention takes. Registered as a torch.library custom op, so
torch.compile and CUDA graphs keep it inside the graph.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor, nn

_BLOCK_ROWS = 64


def available(t: Tensor) -> bool:
    """Whether the kernel serves t: a CUDA tensor, Triton importable, not tracing for export.
    (Only plain globals are read under torch.compile, so Dynamo traces it without a break.)"""
    if t.device.type != 'cuda' or _OP is None:
        return False
    return torch.compiler.is_compiling() or not (torch.jit.is_tracing()
                                                 or torch.onnx.is_in_onnx_export())


def qk_norm_rope(qkv: Tensor, q_norm: nn.LayerNorm, k_norm: nn.LayerNorm, cos: Tensor,
                 sin: Tensor) -> tuple[Tensor, Tensor]:
    """qkv: (B, N, 3, heads, D) the qkv projection's output (any float dtype, contiguous last
    dims); q_norm, k_norm: LayerNorm(D); cos, sin: (N, D) RoPE tables (positional.rope_tables).
    Returns q, k: (B, heads, N, D) in qkv's dtype, normed and rotated."""
    B, N, three, heads, D = qkv.shape
    if three != 3 or D % 4 or D & (D - 1):
        raise ValueError(f'qkv must be (B, N, 3, heads, D) with D a power of two, got '
                         f'{tuple(qkv.shape)}')
    out = _OP(qkv.contiguous(), q_norm.weight, q_norm.bias, k_norm.weight, k_norm.bias,
              cos.float().contiguous(), sin.float().contiguous(), float(q_norm.eps),
              float(k_norm.eps))
    return out[0], out[1]


def _register():
    """The op registered with torch.library, or None without Triton."""
    try:
        import triton

        from da3_ros.model.qk_norm_rope_kernels import qk_norm_rope_kernel
    except ImportError:
        return None

    # An opaque custom op: Inductor calls it from its graph as it calls a library kernel, and
    # CUDA graphs capture it. (No kernel argument may be called `params`: Triton 3.6's
    # generated argument binder has a local of that name.)
    @torch.library.custom_op('da3_ros::qk_norm_rope', mutates_args=())
    def op(qkv: Tensor, q_weight: Tensor, q_bias: Tensor, k_weight: Tensor, k_bias: Tensor,
           cos: Tensor, sin: Tensor, eps_q: float, eps_k: float) -> Tensor:
        B, N, _, heads, D = qkv.shape
        out = qkv.new_empty((2, B, heads, N, D))
        grid = (triton.cdiv(N, _BLOCK_ROWS), B * heads)
        qk_norm_rope_kernel[grid](qkv, q_weight, q_bias, k_weight, k_bias, cos, sin, out, N,
                                  heads, eps_q, eps_k, D=D, BLOCK=_BLOCK_ROWS)
        return out

    @op.register_fake
    def _(qkv, q_weight, q_bias, k_weight, k_bias, cos, sin, eps_q, eps_k):
        B, N, _, heads, D = qkv.shape
        return qkv.new_empty((2, B, heads, N, D))

    return op


# Registered at import where CUDA is present (Triton ships with PyTorch's CUDA builds), so
# that the first compiled call already sees it; CPU-only installs never import Triton (tests
# run the kernel on the CPU through Triton's interpreter, TRITON_INTERPRET=1).
_OP = (_register() if torch.cuda.is_available() or os.environ.get('TRITON_INTERPRET') == '1'
       else None)
