"""The Triton q/k LayerNorm + RoPE kernel against the eager modules (CUDA only: skipped in CI,
run on the GPU machine; docs/benchmarks.md says when)."""
from __future__ import annotations

import pytest
import torch

from da3_ros.model import layers, qk_norm_rope
from da3_ros.model.positional import apply_rope, rope_tables

pytestmark = pytest.mark.skipif(qk_norm_rope._OP is None, reason='needs CUDA and Triton')


def _attention(dim=1024, heads=16, seed=0):
    torch.manual_seed(seed)
    attn = layers.Attention(dim, heads, qk_norm=True).cuda().eval()
    for norm in (attn.q_norm, attn.k_norm):       # non-trivial affine parameters
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    return attn


def _reference(attn, qkv, cos, sin):
    q, k, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    return (apply_rope(attn.q_norm(q.float()), cos, sin),
            apply_rope(attn.k_norm(k.float()), cos, sin))


@pytest.mark.parametrize('layout, B, S', [('local', 6, 1), ('global', 1, 6), ('local', 2, 1)])
def test_kernel_equals_norm_then_rope_fp32(layout, B, S):
    attn = _attention()
    ph, pw = 20, 36                                   # 721 tokens: not a multiple of the block
    cos_l, sin_l, cos_g, sin_g = rope_tables(ph, pw, 64, device='cuda')
    cos, sin = (cos_l, sin_l) if layout == 'local' else (cos_g.repeat(S, 1), sin_g.repeat(S, 1))
    N = cos.shape[0]
    qkv = torch.randn(B, N, 3, 16, 64, device='cuda') * 2 + 0.5
    with torch.no_grad():
        q, k = qk_norm_rope.qk_norm_rope(qkv, attn.q_norm, attn.k_norm, cos, sin)
        q_ref, k_ref = _reference(attn, qkv, cos, sin)
    for got, ref in ((q, q_ref), (k, k_ref)):
        assert got.shape == ref.shape == (B, 16, N, 64) and got.dtype == torch.float32
        assert ((got - ref).abs().max() / ref.abs().max()).item() <= 1e-5


def test_kernel_in_bf16_rounds_the_fp32_result_once():
    attn = _attention(seed=1)
    cos, sin, _, _ = rope_tables(20, 36, 64, device='cuda')
    qkv = (torch.randn(6, 721, 3, 16, 64, device='cuda') * 2).bfloat16()
    with torch.no_grad():
        q, k = qk_norm_rope.qk_norm_rope(qkv, attn.q_norm, attn.k_norm, cos, sin)
        q_ref, k_ref = _reference(attn, qkv, cos, sin)
    for got, ref in ((q, q_ref), (k, k_ref)):
        assert got.dtype == torch.bfloat16
        # one rounding of values that agree in float32 to ~1e-6: at most one bf16 step apart
        step = ref.abs().clamp_min(1e-3) * 2.0 ** -7
        assert ((got.float() - ref).abs() <= step).all()


def test_attention_uses_the_kernel_and_keeps_its_function_compiled_and_eager():
    attn = _attention(seed=2)
    cos, sin, _, _ = rope_tables(20, 36, 64, device='cuda')
    x = torch.randn(6, 721, 1024, device='cuda')
    calls = []
    real = qk_norm_rope.qk_norm_rope
    with torch.no_grad():
        qk_norm_rope.qk_norm_rope = lambda *a: calls.append(1) or real(*a)
        try:
            fused = attn(x, (cos, sin))
        finally:
            qk_norm_rope.qk_norm_rope = real
        assert calls, 'the CUDA path did not use the kernel'
        qk_norm_rope._OP, op = None, qk_norm_rope._OP        # the eager modules
        try:
            ref = attn(x, (cos, sin))
        finally:
            qk_norm_rope._OP = op
        compiled = torch.compile(attn, dynamic=False)(x, (cos, sin))
    for got in (fused, compiled):
        assert ((got - ref).abs().max() / ref.abs().max()).item() <= 1e-4
