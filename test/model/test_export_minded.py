"""Export-minded network: no xformers, position encodings for the actual input size, and a
graph whose structure does not depend on the number of views."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from da3_ros.model import build
from da3_ros.model.positional import apply_rope, resize_pos_embed, rope_tables
from official_nets import build_pair, rel_err

PACKAGE = Path(__file__).resolve().parents[2] / 'da3_ros'


def test_no_xformers_anywhere():
    assert not [p for p in PACKAGE.rglob('*.py') if 'import xformers' in p.read_text()
                or 'from xformers' in p.read_text()]
    code = ('import sys; sys.modules["xformers"] = None; sys.modules["rclpy"] = None; '
            'import torch, da3_ros.model as m\n'
            'with torch.device("meta"): m.build("da3-giant")')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=300)


@pytest.mark.parametrize('ph, pw', [(20, 36), (36, 20), (3, 5), (37, 37), (37, 40), (50, 50)])
def test_pos_embed_equals_interpolate_with_scale_factor(ph, pw):
    g = torch.Generator().manual_seed(ph * pw)
    pos = torch.randn(1, 1 + 37 * 37, 8, generator=g)
    grid = pos[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, mode='bicubic', align_corners=False,
                        scale_factor=((ph + 0.1) / 37, (pw + 0.1) / 37))
    ref = torch.cat([pos[:, :1], ref.permute(0, 2, 3, 1).reshape(1, ph * pw, 8)], dim=1)
    ours = resize_pos_embed(pos, ph, pw)
    if (ph, pw) == (37, 37):     # 518 x 518: the official code skips the resize
        ref = pos
    assert rel_err(ours, ref) <= 1e-5


@pytest.mark.parametrize('layout', ['local', 'global'])
def test_rope_equals_official(layout):
    from depth_anything_3.model.dinov2.layers.rope import PositionGetter, RotaryPositionEmbedding2D
    ph, pw, D = 4, 6, 64
    pos = PositionGetter()(2, ph, pw, device='cpu') + 1
    if layout == 'global':
        pos = torch.ones_like(pos)
    pos = torch.cat([torch.zeros(2, 1, 2, dtype=pos.dtype), pos], dim=1)
    q = torch.randn(2, 3, 1 + ph * pw, D, generator=torch.Generator().manual_seed(1))
    ref = RotaryPositionEmbedding2D(frequency=100)(q, pos)
    cos_l, sin_l, cos_g, sin_g = rope_tables(ph, pw, D)
    ours = apply_rope(q, cos_l, sin_l) if layout == 'local' else apply_rope(q, cos_g, sin_g)
    assert rel_err(ours, ref) <= 1e-6


def test_traced_graph_serves_any_view_count():
    """Traced once with 2 views, the graph reproduces eager results for 3 and 5 views: nothing
    in the forward is unrolled per view. (Reference-view selection for S >= 3 is a host-side
    choice; with 'first' it is the identity.)"""
    official, _ = build_pair('da3-small')
    net = build('da3-small').eval().requires_grad_(False)
    net.load_state_dict(official.state_dict())

    def depth_and_pose(x):
        out = net(x, ref_view_strategy='first')
        return out.depth, out.depth_conf, out.extrinsics, out.intrinsics

    g = torch.Generator().manual_seed(0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(depth_and_pose, torch.randn(1, 2, 3, 42, 56, generator=g),
                                 check_trace=False)
        for S in (3, 5):
            x = torch.randn(1, S, 3, 42, 56, generator=g)
            for got, want in zip(traced(x), depth_and_pose(x), strict=True):
                assert got.shape == want.shape
                assert rel_err(got, want) <= 1e-5
