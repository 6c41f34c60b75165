"""Depth -> points (da3_ros/geometry/points.py) against a closed-form back-projection, a
per-voxel reference written here, and plain 4x4 matrix algebra."""
import numpy as np
import pytest
from pinhole_scene import H, K, W, closed_form

from da3_ros.errors import ConfigError, PointsError
from da3_ros.geometry.points import (
    CloudConfig,
    Points,
    back_project,
    depth_to_points,
    fuse_points,
    pack_rgb,
    unpack_rgb,
    voxel_downsample,
)


def test_back_projection_matches_closed_form(pinhole):
    depth = pinhole[0]
    np.testing.assert_allclose(back_project(depth, K), closed_form(depth), rtol=1e-6)
    p = back_project(depth, K)[7, 19]  # row 7, column 19, by hand
    z = float(depth[7, 19])
    np.testing.assert_allclose(p, [(19 - 15.3) * z / 40.0, (7 - 11.7) * z / 42.0, z], rtol=1e-6)


def test_back_projection_reprojects_with_skew(pinhole):
    K_skew = K.copy()
    K_skew[0, 1] = 0.7
    xyz = back_project(pinhole[0], K_skew).reshape(-1, 3).astype(np.float64)
    ok = xyz[:, 2] > 0
    uv1 = (K_skew @ (xyz[ok] / xyz[ok, 2:]).T).T
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(uv1[:, :2], np.stack([u, v], -1).reshape(-1, 2)[ok], atol=1e-4)


def test_pcl_packing_by_hand():
    packed = pack_rgb(np.array([[255, 0, 0], [1, 2, 3], [0, 0, 255]], np.uint8))
    assert packed.dtype == np.float32
    assert packed.view(np.uint32).tolist() == [0xFF0000, 0x010203, 0x0000FF]
    np.testing.assert_array_equal(unpack_rgb(packed), [[255, 0, 0], [1, 2, 3], [0, 0, 255]])


def test_voxel_means_match_a_per_voxel_reference(rng):
    xyz = rng.uniform(-1.0, 1.0, (300, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (300, 3), dtype=np.uint8)
    conf = rng.uniform(0, 1, 300).astype(np.float32)
    out = voxel_downsample(Points(xyz, rgb, conf), 0.5)
    groups: dict = {}
    for i, key in enumerate(map(tuple, np.floor(xyz / 0.5).astype(int))):
        groups.setdefault(key, []).append(i)
    assert len(out.xyz) == len(groups) > 50
    for key, index in sorted(groups.items()):  # out is sorted by voxel index
        j = len([k for k in groups if k < key])
        np.testing.assert_allclose(out.xyz[j], xyz[index].astype(np.float64).mean(0), rtol=1e-5)
        np.testing.assert_array_equal(out.rgb[j], np.round(rgb[index].mean(0)))
        assert out.confidence[j] == pytest.approx(conf[index].mean(), rel=1e-5)


def test_voxel_size_in_config_limits_point_density(pinhole):
    depth = pinhole[0]
    dense = depth_to_points(depth, K)
    sparse = depth_to_points(depth, K, cfg=CloudConfig(voxel_size_m=2.0))
    keys = np.floor(sparse.xyz / 2.0).astype(int)
    assert len(sparse.xyz) < len(dense.xyz)
    assert len(np.unique(keys, axis=0)) == len(keys)  # at most one point per voxel


def test_fused_cloud_is_each_camera_moved_by_its_transform(pinhole):
    depth = pinhole[0]
    a = depth_to_points(depth, K)
    b = depth_to_points(depth[::-1].copy(), K)
    c, s = np.cos(0.3), np.sin(0.3)
    T_fixed_a = np.array([[c, -s, 0, 1.0], [s, c, 0, -2.0], [0, 0, 1, 0.5], [0, 0, 0, 1]])
    T_fixed_b = np.eye(4)
    T_fixed_b[:3, 3] = [0.0, 3.0, 0.0]
    fused = fuse_points([a, b], [T_fixed_a, T_fixed_b])
    homogeneous = np.hstack([a.xyz, np.ones((len(a.xyz), 1))]).astype(np.float64)
    expected_a = (T_fixed_a @ homogeneous.T).T[:, :3]
    np.testing.assert_allclose(fused.xyz[: len(a.xyz)], expected_a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.xyz[len(a.xyz):], b.xyz + [0.0, 3.0, 0.0], atol=1e-5)


GEOMETRY_BAD = [
    (lambda d: depth_to_points(d, K, rgb=np.zeros((H, W), np.uint8)), 'shape_mismatch'),
    (lambda d: depth_to_points(d, K, confidence=np.zeros((H, W + 1))), 'shape_mismatch'),
    (lambda d: depth_to_points(d, K, sky_mask=np.zeros((1, H, W), bool)), 'shape_mismatch'),
    (lambda d: depth_to_points(d[None], K), 'shape_mismatch'),
    (lambda d: fuse_points([depth_to_points(d, K)], [np.full((4, 4), np.nan)]), 'bad_transform'),
    (lambda d: fuse_points([depth_to_points(d, K)], []), 'shape_mismatch'),
]


@pytest.mark.parametrize(('call', 'cause'), GEOMETRY_BAD)
def test_bad_point_inputs_give_cause(pinhole, call, cause):
    with pytest.raises(PointsError) as err:
        call(pinhole[0])
    assert err.value.cause == cause


@pytest.mark.parametrize('kwargs', [{'stride': 0}, {'min_range_m': 5.0, 'max_range_m': 1.0},
                                    {'voxel_size_m': -1.0}, {'voxel_size_m': float('nan')}])
def test_bad_cloud_config_is_rejected(kwargs):
    with pytest.raises(ConfigError):
        CloudConfig(**kwargs)
