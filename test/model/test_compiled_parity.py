"""The network through torch.compile (Inductor's CPU backend: the same graph capture and
decompositions as on CUDA, and the compile-only code paths such as the fused q/k LayerNorm
+ RoPE) against the official network, fp32."""
from __future__ import annotations

import torch

from da3_ros.engine.compiled import CompileConfig, compile_network
from official_nets import assert_outputs_match, build_pair
from random_weights import randomize_


def test_compiled_network_matches_official():
    official, ours = build_pair('da3-small')
    randomize_(official, 7)
    ours.load_state_dict(official.state_dict(), strict=True)
    ours.eval().requires_grad_(False)
    run = compile_network(ours, CompileConfig(mode='default', fast_heads=False))
    x = torch.randn(1, 3, 3, 42, 70, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        got, ref = run(x), official(x)
    assert_outputs_match(got, ref, ('depth', 'depth_conf', 'extrinsics', 'intrinsics'))
