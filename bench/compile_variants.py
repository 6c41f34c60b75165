"""The compile settings bench/gpu_vs_official.py tries (name -> engine.compiled.CompileConfig).

The package ships one setting, engine.compiled.FAST; these are the variants it was chosen
from, kept so the benchmark can rerun them (results: docs/benchmarks.md section 1).

Profiled on an H100 (DA3-LARGE 6 x 280 x 504, PyTorch 2.11):
- BASELINE (ours_fast_v1) is the first compiled variant measured (2026-11-24): CUDA-graph
  trees ('reduce-overhead'), fast heads, weights cast by autocast on every call.
- sdpa=('cudnn', ...): PyTorch already picks cuDNN attention (16.1 vs 16.0 ms).
- channels_last_heads: Inductor already lays the convolutions out NHWC (not kept; its timing
  did not finish).
- freezing: slower (17.8 vs 16.0 ms, +1 GB: constants copied around the CUDA graph).
- bf16 weights: the per-call autocast casts of the weights took 0.8 ms (kept in FAST).
- CapturedCalls ('captured') instead of CUDA-graph trees: 12.5 vs 14.0 ms in the same run
  (2026-11-25; FAST used the trees until then, now ours_fast_trees).
"""
from __future__ import annotations

from dataclasses import replace

from da3_ros.engine.compiled import FAST, CompileConfig

BASELINE = CompileConfig(mode='reduce-overhead', fast_heads=True)
# GEMMs autotuned between cuBLAS and Inductor's Triton templates (persistent TMA kernels on
# Hopper), which can take the GELU / LayerScale / residual epilogues; convolutions stay cuDNN
MM_EPILOGUES = (('max_autotune_gemm', True), ('max_autotune_gemm_backends', 'TRITON,ATEN'),
                ('max_autotune_conv_backends', 'ATEN'),
                ('triton.enable_persistent_tma_matmul', True))
# name -> CompileConfig (mode 'eager': not compiled)
VARIANTS = {'ours_eager': CompileConfig(mode='eager', fast_heads=False, bf16_weights=True),
            'ours_compiled': CompileConfig(fast_heads=False, bf16_weights=True),
            'ours_fast_v1': BASELINE,
            'ours_fast_freeze': replace(BASELINE, freezing=True),
            'ours_fast_cl': replace(BASELINE, channels_last_heads=True),
            'ours_fast_cudnn_sdpa': replace(BASELINE, sdpa=('cudnn', 'flash')),
            'ours_fast_bench': replace(BASELINE, cudnn_benchmark=True),
            'ours_fast': FAST,
            'ours_fast_cdt': replace(FAST, inductor=(('coordinate_descent_tuning', True),)),
            'ours_fast_autotune': replace(FAST, mode='max-autotune'),
            'ours_fast_combo': replace(FAST, inductor=(('combo_kernels', True),)),
            'ours_fast_mm': replace(FAST, inductor=MM_EPILOGUES),
            'ours_fast_trees': replace(FAST, mode='reduce-overhead')}
