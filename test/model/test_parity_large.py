"""BASE/LARGE/METRIC/MONO at full size, GIANT and NESTED through reduced-depth backbones of the
same family, against the official networks (fp32 CPU, small inputs to keep CI fast)."""
from __future__ import annotations

import pytest
import torch

from official_nets import assert_outputs_match, build_pair, rel_err
from random_weights import randomize_

ANYVIEW_KEYS = ('depth', 'depth_conf', 'extrinsics', 'intrinsics')


def _pair(name, shrink=None, seed=0):
    official, ours = build_pair(name, shrink)
    randomize_(official, seed)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours


def _images(seed, S, H, W):
    return torch.randn(1, S, 3, H, W, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('name', ['da3-base', 'da3-large'])
def test_full_size_anyview(name):
    official, ours = _pair(name)
    x = _images(1, 2, 42, 70)
    with torch.no_grad():
        assert_outputs_match(ours(x), official(x), ANYVIEW_KEYS)


@pytest.mark.parametrize('name', ['da3metric-large', 'da3mono-large'])
def test_full_size_monocular_with_sky(name):
    official, ours = _pair(name)
    x = _images(2, 2, 56, 42)
    with torch.no_grad():
        ref, out = official(x), ours(x)
    assert set(out.as_dict()) == set(ref) - {'aux'} == {'depth', 'sky'}
    assert_outputs_match(out, ref, ('depth', 'sky'))


def test_sky_fill_matches_official_when_seeded():
    """More than 100k non-sky pixels: the 0.99 quantile comes from a seeded random subsample."""
    from addict import Dict
    from depth_anything_3.model.da3 import DepthAnything3Net

    from da3_ros.model.postprocess import fill_sky
    g = torch.Generator().manual_seed(0)
    depth = torch.rand(1, 2, 280, 504, generator=g) * 10
    sky = (torch.rand(1, 2, 280, 504, generator=g) > 0.8).float()
    torch.manual_seed(5)
    ref = DepthAnything3Net._process_mono_sky_estimation(None, Dict(depth=depth, sky=sky))
    torch.manual_seed(5)
    filled = fill_sky(depth, sky)
    assert torch.equal(filled, ref.depth)
    assert not torch.equal(filled, depth)


def test_giant_family_reduced_depth():
    """SwiGLU, 24 heads, camera token entering at a global block, GS head weights."""
    official, ours = _pair('da3-giant', {'model': 'vitg'})
    x = _images(3, 3, 42, 56)
    with torch.no_grad():
        assert_outputs_match(ours(x), official(x), ANYVIEW_KEYS)
        T = torch.eye(4).repeat(1, 3, 1, 1)
        T[0, 1, :3, 3] = torch.tensor([1.0, 0.0, 0.2])
        T[0, 2, :3, 3] = torch.tensor([-0.5, 0.3, 0.0])
        K = torch.tensor([[60.0, 0, 28], [0, 60, 21], [0, 0, 1]]).repeat(1, 3, 1, 1)
        assert_outputs_match(ours(x, T, K), official(x, T, K), ANYVIEW_KEYS)


def test_nested_reduced_depth_seeded():
    """Metric scaling of the any-view branch by the metric branch, sky fill, pose scaling."""
    official, ours = _pair('da3nested-giant-large', {'anyview': 'vitg', 'metric': 'vitl_mono'})
    # Large enough (2 x 280 x 378 px) that every quantile takes the random-subsample path.
    x = _images(4, 2, 280, 378)
    with torch.no_grad():
        torch.manual_seed(7)
        ref = official(x)
        torch.manual_seed(7)
        out = ours(x)
    assert_outputs_match(out, ref, ANYVIEW_KEYS)
    assert abs(out.scale_factor.item() - ref['scale_factor']) <= 1e-4 * abs(ref['scale_factor'])
    assert ref['is_metric'] == 1
    assert rel_err(out.depth, ref['depth']) <= 1e-4
