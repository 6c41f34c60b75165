"""DA3-SMALL against the official network, full size, fp32 CPU, same random weights."""
from __future__ import annotations

import pytest
import torch

from official_nets import assert_outputs_match, rel_err

ANYVIEW_KEYS = ('depth', 'depth_conf', 'extrinsics', 'intrinsics')


def _images(seed: int, S: int, H: int, W: int) -> torch.Tensor:
    return torch.randn(1, S, 3, H, W, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('S, H, W', [(1, 70, 126), (2, 70, 126), (2, 112, 70), (4, 56, 98)])
def test_forward_matches_official(small_pair, S, H, W):
    official, ours = small_pair
    x = _images(S * 1000 + H, S, H, W)
    with torch.no_grad():
        ref, out = official(x), ours(x)
    assert set(out.as_dict()) == set(ref) - {'aux'}
    assert out.depth.shape == (1, S, H, W)
    assert out.extrinsics.shape == (1, S, 3, 4) and out.intrinsics.shape == (1, S, 3, 3)
    assert_outputs_match(out, ref, ANYVIEW_KEYS)


def _random_cameras(seed: int, S: int, H: int, W: int):
    """Normalised world-to-camera poses (view 0 = identity) and pinhole K, as the API feeds."""
    g = torch.Generator().manual_seed(seed)
    T = torch.eye(4).repeat(1, S, 1, 1)
    for v in range(1, S):
        angle = 0.3 * torch.randn(3, generator=g)
        skew = torch.tensor([[0, -angle[2], angle[1]], [angle[2], 0, -angle[0]],
                             [-angle[1], angle[0], 0]])
        T[0, v, :3, :3] = torch.linalg.matrix_exp(skew)
        T[0, v, :3, 3] = torch.randn(3, generator=g)
    K = torch.tensor([[1.1 * W, 0, W / 2], [0, 1.1 * W, H / 2], [0, 0, 1]]).repeat(1, S, 1, 1)
    return T, K


@pytest.mark.parametrize('S', [2, 3])
def test_camera_conditioned_matches_official(small_pair, S):
    official, ours = small_pair
    H, W = 56, 84
    x = _images(7 + S, S, H, W)
    T, K = _random_cameras(S, S, H, W)
    with torch.no_grad():
        ref, out = official(x, T, K), ours(x, T, K)
        unconditioned = ours(x)
    assert_outputs_match(out, ref, ANYVIEW_KEYS)
    assert rel_err(out.depth, unconditioned.depth) > 1e-3   # the cameras really went in


def test_ray_pose_matches_official_when_seeded(small_pair):
    """use_ray_pose: depth and rays match the official forward; the ray -> camera solve
    (weighted RANSAC + QL) equals the official solve on the same rays and random draws.

    Poses are not compared across the two forwards because, with random weights, the ray maps
    are nearly degenerate and the homography amplifies their ~1e-7 differences."""
    from addict import Dict
    official, ours = small_pair
    H, W = 56, 84
    x = _images(3, 2, H, W)
    with torch.no_grad():
        torch.manual_seed(11)
        ref = official(x, use_ray_pose=True)
        torch.manual_seed(11)
        out = ours(x, use_ray_pose=True, return_rays=True)
        torch.manual_seed(11)
        solved = official._process_ray_pose_estimation(
            Dict(ray=out.ray.clone(), ray_conf=out.ray_conf.clone()), H, W)
        default = ours(x)
    assert_outputs_match(out, ref, ('depth', 'depth_conf'))
    assert_outputs_match(out, solved, ('extrinsics', 'intrinsics'), tol=1e-6)
    assert rel_err(out.extrinsics, default.extrinsics) > 1e-3   # a different pose path ran


def test_ray_pose_solver_matches_official_on_well_posed_rays():
    """Rays of a known camera (plus noise): same result as the official solver, and the
    camera is recovered."""
    from addict import Dict
    from depth_anything_3.model.da3 import DepthAnything3Net

    from da3_ros.model.ray_pose import canonical_plane, rays_to_cameras
    h, w, H, W = 40, 64, 70, 112
    g = torch.Generator().manual_seed(2)
    K_true = torch.tensor([[90.0, 0, W / 2], [0, 85.0, H / 2], [0, 0, 1]])
    angle = 0.2 * torch.randn(3, generator=g)
    skew = torch.tensor([[0, -angle[2], angle[1]], [angle[2], 0, -angle[0]],
                         [-angle[1], angle[0], 0]])
    R_wc = torch.linalg.matrix_exp(skew)
    centre = torch.tensor([0.3, -0.2, 1.0])
    pixels = (canonical_plane(h, w) + torch.tensor([1.0, 1.0, 0.0])) * torch.tensor(
        [W / 2, H / 2, 1.0])                                   # pixel coordinates at H x W
    directions = (torch.linalg.inv(K_true) @ pixels.T).T @ R_wc.T
    directions = directions + 1e-3 * torch.randn(directions.shape, generator=g)
    ray = torch.cat([directions, centre.expand_as(directions)], -1).reshape(1, 1, h, w, 6)
    conf = 1 + torch.rand(1, 1, h, w, generator=g)
    torch.manual_seed(3)
    T_cam_world, K = rays_to_cameras(ray, conf, (H, W))
    torch.manual_seed(3)
    ref = DepthAnything3Net._process_ray_pose_estimation(
        None, Dict(ray=ray.clone(), ray_conf=conf.clone()), H, W)
    assert rel_err(T_cam_world, ref['extrinsics']) <= 1e-6
    assert rel_err(K, ref['intrinsics']) <= 1e-6
    assert torch.allclose(K[0, 0], K_true, atol=0.5)
    assert torch.allclose(T_cam_world[0, 0, :, :3], R_wc.T, atol=2e-3)


def test_rays_on_request_match_official_head(small_pair):
    official, ours = small_pair
    H, W = 56, 84
    x = _images(5, 2, H, W)
    with torch.no_grad():
        feats, _ = official.backbone(x, cam_token=None, export_feat_layers=[])
        ref = official.head(feats, H, W, patch_start_idx=0)
        out = ours(x, return_rays=True)
    assert out.ray.shape == (1, 2, 8 * H // 14, 8 * W // 14, 6)
    assert rel_err(out.ray, ref['ray']) <= 1e-4
    assert rel_err(out.ray_conf, ref['ray_conf']) <= 1e-4
    assert ours(x).ray is None


def _distinct_views(seed: int, S: int, H: int, W: int) -> torch.Tensor:
    """Views with different low-frequency content, so that their cls tokens differ clearly."""
    coarse = 2 * torch.randn(S, 3, 3, 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=(H, W), mode='bilinear')[None]


@pytest.mark.parametrize('strategy', ['first', 'middle', 'saddle_balanced'])
def test_reference_view_strategies_match_official(small_pair, strategy):
    """S = 5: the official moves the chosen view to the front and restores the order after;
    ours puts the reference camera token at the chosen view (not view 0 for saddle_balanced).

    'saddle_sim_range' is checked on identical tokens below only: its score ties by symmetry
    (the two views of the most similar pair share their row maximum), so the argmax depends
    on last-bit rounding in either implementation."""
    from da3_ros.model.reference_view import select_reference_view
    official, ours = small_pair
    x = _distinct_views(2, 5, 42, 56)
    with torch.no_grad():
        ref = official(x, ref_view_strategy=strategy)
        out = ours(x, ref_view_strategy=strategy)
        tokens = ours.backbone.pretrained.tokens(x)
        for block in ours.backbone.pretrained.blocks[:2]:
            tokens = block(tokens.reshape(5, -1, 384)).reshape(1, 5, -1, 384)
    chosen = select_reference_view(tokens, strategy).item()
    if strategy == 'saddle_balanced':   # data-dependent: must not be view 0, so views reorder
        assert chosen != 0
    else:
        assert chosen == {'first': 0, 'middle': 2}[strategy]
    assert_outputs_match(out, ref, ANYVIEW_KEYS)


def test_reference_view_selection_equals_official():
    from depth_anything_3.model.reference_view_selector import select_reference_view

    from da3_ros.model.reference_view import select_reference_view as ours_select
    g = torch.Generator().manual_seed(4)
    picked = set()
    for _ in range(20):
        tokens = torch.randn(3, 6, 5, 16, generator=g)
        for strategy in ('saddle_balanced', 'saddle_sim_range', 'middle', 'first'):
            ref_idx = select_reference_view(tokens, strategy=strategy)
            idx = ours_select(tokens, strategy)
            assert torch.equal(idx, ref_idx)
            picked.update(idx.tolist())
    assert len(picked) > 2   # non-trivial choices were exercised
