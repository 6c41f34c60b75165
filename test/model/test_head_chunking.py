"""The dense heads run 8 frames at a time (memory), exactly like one pass over all frames."""
from __future__ import annotations

import torch

from da3_ros.model import build, da3
from random_weights import randomize_


def test_chunked_heads_equal_one_pass(monkeypatch):
    torch.manual_seed(0)
    net = randomize_(build('da3-small').eval(), seed=5)
    x = torch.randn(1, 11, 3, 28, 42)
    calls = []
    original = net.head.forward
    monkeypatch.setattr(net.head, 'forward', lambda *a, **k: calls.append(a[0][0].shape[0])
                        or original(*a, **k))
    with torch.no_grad():
        chunked = net(x, ref_view_strategy='first', return_rays=True)
        assert calls == [8, 3]
        monkeypatch.setattr(da3, 'HEAD_CHUNK_FRAMES', 64)
        whole = net(x, ref_view_strategy='first', return_rays=True)
    assert calls == [8, 3, 11]
    assert chunked.ray.shape == (1, 11, 16, 24, 6)
    for a, b in zip(chunked, whole, strict=True):
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
