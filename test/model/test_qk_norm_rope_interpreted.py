"""The Triton q/k LayerNorm + RoPE kernel (model/qk_norm_rope.py) run on the CPU by Triton's
interpreter, against the eager modules: its arithmetic and indexing, checked in CI (the GPU
runs of the same comparison are in test_qk_norm_rope_cuda.py). Triton comes from the folder
scripts/setup.sh installs it to beside the venv."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRITON_DIR = Path(sys.prefix) / 'triton-interpreter'

CHECK = r'''
import torch
from da3_ros.model import layers, qk_norm_rope
from da3_ros.model.positional import apply_rope, rope_tables
assert qk_norm_rope._OP is not None, 'the op was not registered under TRITON_INTERPRET=1'
torch.manual_seed(0)
attn = layers.Attention(256, 4, qk_norm=True)
for norm in (attn.q_norm, attn.k_norm):
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
ph, pw, S = 5, 9, 3                       # 46 tokens per view: not a multiple of the block
cos_l, sin_l, cos_g, sin_g = rope_tables(ph, pw, 64)
cases = [('local', 2 * S, (cos_l, sin_l)), ('global', 2, (cos_g.repeat(S, 1), sin_g.repeat(S, 1)))]
with torch.no_grad():
    for name, B, (cos, sin) in cases:
        N = cos.shape[0]
        for dtype in (torch.float32, torch.bfloat16):
            qkv = (torch.randn(B, N, 3, 4, 64) * 2 + 0.5).to(dtype)
            q, k = qk_norm_rope.qk_norm_rope(qkv, attn.q_norm, attn.k_norm, cos, sin)
            raw_q, raw_k, _ = qkv.float().permute(2, 0, 3, 1, 4).unbind(0)
            for got, ref in ((q, apply_rope(attn.q_norm(raw_q), cos, sin)),
                             (k, apply_rope(attn.k_norm(raw_k), cos, sin))):
                assert got.shape == ref.shape == (B, 4, N, 64) and got.dtype == dtype, name
                diff, scale = (got.float() - ref).abs(), ref.abs().max()
                if dtype == torch.float32:
                    assert diff.max() <= 1e-6 * scale, (name, diff.max() / scale)
                else:       # within one bf16 step (2^-7 relative) of the float32 result:
                    # the interpreter's cast to bf16 truncates, the GPU's rounds (half that)
                    assert (diff <= ref.abs() * 2.0 ** -7 + 1e-6 * scale).all(), name
print('ok')
'''


def test_kernel_equals_norm_then_rope_in_the_interpreter():
    assert (TRITON_DIR / 'triton').is_dir(), f'{TRITON_DIR}: run scripts/setup.sh'
    env = dict(os.environ, TRITON_INTERPRET='1',
               PYTHONPATH=os.pathsep.join([str(ROOT), str(TRITON_DIR)]))
    run = subprocess.run([sys.executable, '-c', CHECK], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == 'ok', run.stderr[-3000:]
