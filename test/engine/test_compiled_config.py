"""engine.compiled: settings that change kernels, never the function."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from da3_ros.engine.compiled import CompileConfig, cast_autocast_weights, compile_or_eager
from da3_ros.errors import ConfigError, InputError
from da3_ros.model import build
from random_weights import randomize_


@pytest.mark.parametrize('fast_heads', [True, False])
def test_bf16_weights_give_the_autocast_function(fast_heads):
    """Weights stored in bf16 once = autocast casting them on every call (CPU autocast)."""
    net = randomize_(build('da3-small').eval().requires_grad_(False), seed=3)
    net.fast_heads = fast_heads
    x = torch.randn(1, 3, 3, 28, 42, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16):
        want = net(x)
        cast_autocast_weights(net)
        got = net(x)
    assert net.backbone.pretrained.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert net.backbone.pretrained.norm.weight.dtype == torch.float32      # LN stays fp32
    assert net.cam_enc.trunk[0].attn.qkv.weight.dtype == torch.float32     # always fp32
    head_dtype = torch.bfloat16 if fast_heads else torch.float32
    assert net.head.scratch.output_conv1.weight.dtype == head_dtype
    for a, b in zip(got, want, strict=True):
        if b is not None:
            assert torch.equal(a, b)


def test_config_checks_its_values():
    with pytest.raises(ConfigError, match='mode'):
        CompileConfig(mode='fastest')
    with pytest.raises(ConfigError, match='SDPA'):
        CompileConfig(sdpa=('cudnn', 'fa3'))


def test_compile_or_eager_falls_back_only_on_compile_failures(monkeypatch):
    def failing_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError('no working Triton here')
        return run
    monkeypatch.setattr(torch, 'compile', failing_compile)
    on_gpu = SimpleNamespace(device=torch.device('cuda'), value=2)

    def double(x, k=1):
        if x.value < 0:
            raise InputError('negative')
        return x.value * 2 * k
    broken = compile_or_eager(double)
    with pytest.raises(InputError):     # the function's own errors propagate
        broken(SimpleNamespace(device=torch.device('cuda'), value=-1))
    assert not broken.failed
    assert broken(on_gpu, 3) == 12 and broken.failed       # compile failed: eager from now on
    assert broken.compiled is not None
    cpu = compile_or_eager(double)
    assert cpu(SimpleNamespace(device=torch.device('cpu'), value=5)) == 10
    assert cpu.compiled is None                             # never compiled off CUDA


def test_eager_settings_keep_the_function():
    """mode='eager' with the layout / weight settings gives the plain network's outputs under
    autocast exactly, and a forced attention backend its fp32 outputs (what the compiled
    variants start from)."""
    from da3_ros.engine.compiled import _inductor_options, compile_network
    x = torch.randn(1, 2, 3, 28, 42, generator=torch.Generator().manual_seed(1))
    net = randomize_(build('da3-small').eval().requires_grad_(False), seed=4)
    with torch.inference_mode():
        want_fp32 = net(x)
        got_fp32 = compile_network(net, CompileConfig(mode='eager', fast_heads=False,
                                                      sdpa=('math',)))(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            net.fast_heads = True
            want = net(x)
            got = compile_network(net, CompileConfig(mode='eager', channels_last_heads=True,
                                                     bf16_weights=True))(x)
    assert net.head.scratch.output_conv1.weight.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(got, want, strict=True):
        if b is not None:
            assert torch.equal(a, b)
    for a, b in zip(got_fp32, want_fp32, strict=True):
        if b is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    options = _inductor_options(CompileConfig(freezing=True, inductor=(('foo', 1),)))
    assert options == {'triton.cudagraphs': True, 'max_autotune': False, 'freezing': True,
                       'foo': 1}
