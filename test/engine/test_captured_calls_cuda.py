"""engine.compiled.CapturedCalls on CUDA (skipped in CI; run on the GPU machine): replays give
the function's outputs, outputs survive later calls, signatures capture apart, and a function
that cannot be captured runs uncaptured."""
from __future__ import annotations

import pytest
import torch

from da3_ros.engine.compiled import CapturedCalls, CompileConfig, compile_network
from official_nets import assert_outputs_match, build_pair
from random_weights import randomize_

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def test_replays_follow_their_inputs_and_outputs_survive_later_calls():
    calls = []

    def fn(x, scale=1.0):
        calls.append(1)
        return {'y': x * scale + 1, 'n': x.shape[0]}
    run = CapturedCalls(fn)
    a, b = (torch.randn(4, 5, device='cuda') for _ in range(2))
    out_a = run(a, scale=2.0)
    captured = len(calls)                      # warm-up and capture
    out_b = run(b, scale=2.0)
    assert len(calls) == captured              # replayed, fn not called again
    assert torch.equal(out_a['y'], a * 2 + 1) and torch.equal(out_b['y'], b * 2 + 1)
    assert out_a['n'] == 4
    out_c = run(a, scale=3.0)                  # another signature: captured apart
    assert torch.equal(out_c['y'], a * 3 + 1) and len(run.graphs) == 2
    assert not run.failed


def test_uncapturable_function_runs_uncaptured():
    def fn(x):
        return x * float(x.sum().item())       # a host synchronisation
    run = CapturedCalls(fn)
    x = torch.randn(3, device='cuda')
    assert torch.allclose(run(x), x * x.sum()) and run.failed
    assert torch.allclose(run(x + 1), (x + 1) * (x + 1).sum())
    assert not run.graphs                      # found before capturing: no broken capture,
    torch.randn(2, device='cuda')              # which would leave CUDA random ops failing


def test_errors_of_the_function_propagate_and_capturing_stays_on():
    def fn(x):
        if x.shape[0] != 3:
            raise ValueError('three rows please')
        return x + 1
    run = CapturedCalls(fn)
    with pytest.raises(ValueError, match='three rows'):
        run(torch.randn(2, device='cuda'))
    x = torch.randn(3, device='cuda')
    assert torch.equal(run(x), x + 1) and not run.failed and len(run.graphs) == 1


def test_keyword_order_does_not_mix_up_inputs():
    run = CapturedCalls(lambda *, a, b: a - b)
    a, b = torch.ones(2, device='cuda'), torch.zeros(2, device='cuda')
    assert torch.equal(run(a=a, b=b), a - b)
    assert torch.equal(run(b=b, a=a), a - b) and len(run.graphs) == 1


def test_captured_network_matches_official(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)   # float32 convolutions
    official, ours = build_pair('da3-small')
    randomize_(official, 3)
    ours.load_state_dict(official.state_dict(), strict=True)
    official, ours = official.cuda().eval(), ours.cuda().eval().requires_grad_(False)
    run = compile_network(ours, CompileConfig(mode='captured', fast_heads=False))
    g = torch.Generator().manual_seed(4)
    xs = [torch.randn(1, 3, 3, 56, 84, generator=g).cuda() for _ in range(2)]
    with torch.inference_mode():
        # 'first': on white noise the default strategy's scores tie between views
        outs = [run(x, ref_view_strategy='first') for x in xs]    # the second is a replay
        for x, out in zip(xs, outs, strict=True):
            ref = official(x, None, None, [], False, False, 'first')
            assert_outputs_match(out, ref, ('depth', 'depth_conf', 'extrinsics'))
