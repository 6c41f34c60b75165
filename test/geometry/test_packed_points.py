"""The torch point packing (GPU path) gives the same PointCloud2 as the numpy path."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from std_msgs.msg import Header

from da3_ros.geometry.packed_points import pack_points, pack_points_batch
from da3_ros.geometry.points import CloudConfig, depth_to_points
from da3_ros.ros.pointcloud import cloud_to_points, packed_to_cloud, points_to_cloud


def scene(seed: int = 0):
    rng = np.random.default_rng(seed)
    H, W = 28, 42
    depth = rng.uniform(0.5, 30.0, (H, W)).astype(np.float32)
    depth[0, :5] = np.nan
    depth[1, :3] = -1.0
    conf = rng.uniform(1.0, 5.0, (H, W)).astype(np.float32)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    sky = rng.random((H, W)) < 0.1
    K = np.array([[30.0, 0.4, 21.2], [0, 31.0, 13.7], [0, 0, 1]])
    return depth, conf, rgb, sky, K


@pytest.mark.parametrize('cfg', [CloudConfig(), CloudConfig(min_confidence=2.5, stride=2),
                                 CloudConfig(min_range_m=2.0, max_range_m=20.0, stride=3)])
@pytest.mark.parametrize('with_conf', [True, False])
def test_same_cloud_as_the_numpy_path(cfg, with_conf):
    depth, conf, rgb, sky, K = scene()
    conf = conf if with_conf else None
    want = points_to_cloud(depth_to_points(depth, K, rgb, conf, sky, cfg), Header())
    packed = pack_points(torch.from_numpy(depth), torch.from_numpy(K), torch.from_numpy(rgb),
                         None if conf is None else torch.from_numpy(conf),
                         torch.from_numpy(sky), cfg.min_confidence, cfg.min_range_m,
                         cfg.max_range_m, cfg.stride)
    got = packed_to_cloud(packed.numpy(), Header())
    assert [f.name for f in got.fields] == [f.name for f in want.fields]
    assert (got.width, got.point_step) == (want.width, want.point_step) and got.width > 50
    a, b = cloud_to_points(got), cloud_to_points(want)
    assert np.allclose(a.xyz, b.xyz, rtol=1e-6, atol=1e-6)
    assert np.array_equal(a.rgb, b.rgb)
    if with_conf:
        assert np.array_equal(a.confidence, b.confidence)


def test_batch_equals_per_view():
    views = [scene(seed) for seed in range(3)]
    depth, conf, rgb, sky = (torch.from_numpy(np.stack([v[i] for v in views])) for i in range(4))
    K = torch.from_numpy(np.stack([v[4] * [[1 + 0.1 * s], [1], [1]] for s, v in
                                   enumerate(views)]))
    records, counts = pack_points_batch(depth, K, rgb, conf, sky, 2.0, 1.0, 25.0, 2)
    start = 0
    for s in range(3):
        want = pack_points(depth[s], K[s], rgb[s], conf[s], sky[s], 2.0, 1.0, 25.0, 2)
        got = records[start:start + counts[s]]
        start += int(counts[s])
        assert got.shape == want.shape
        xyz_conf = [0, 1, 2, 4]       # the rgb word holds bits: compared exactly below
        assert torch.allclose(got[:, xyz_conf], want[:, xyz_conf], rtol=1e-6, atol=1e-6)
        assert torch.equal(got[:, 3].view(torch.int32), want[:, 3].view(torch.int32))
    assert start == len(records)


def _voxel_reference(xyz, rgb, conf, edge):
    """Brute force: a dict from voxel index to its points, means in float64, sorted keys."""
    groups = {}
    for i, p in enumerate(xyz):
        groups.setdefault(tuple(int(k) for k in np.floor(p / np.float32(edge))), []).append(i)
    keys = sorted(groups)
    mean = lambda a, idx: np.asarray(a, np.float64)[idx].mean(axis=0)  # noqa: E731
    return (np.array([mean(xyz, groups[k]) for k in keys], np.float32),
            np.array([np.round(mean(rgb, groups[k])) for k in keys], np.uint8),
            np.array([mean(conf, groups[k]) for k in keys], np.float32))


@pytest.mark.parametrize('offset_m', [0.0, 3.0e5])     # 3e5 m / 0.25 m > 2**20: row sort
def test_voxel_mean_records_against_brute_force_and_host(offset_m):
    """GPU-path voxel averaging (torch, here on CPU tensors) = a brute-force reference = the
    host path's voxel_downsample; invalid rows are ignored."""
    from da3_ros.geometry.packed_points import pack_rgb_bits, voxel_mean_records
    from da3_ros.geometry.points import Points, unpack_rgb, voxel_downsample

    rng = np.random.default_rng(5)
    n, edge = 3000, 0.25
    xyz = (rng.uniform(-2.0, 2.0, (n, 3)) + offset_m).astype(np.float32)
    rgb = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    conf = rng.uniform(1.0, 5.0, n).astype(np.float32)
    valid = rng.random(n) < 0.8
    records = torch.cat([torch.from_numpy(xyz), pack_rgb_bits(torch.from_numpy(rgb))[:, None],
                         torch.from_numpy(conf)[:, None]], dim=1)
    got = voxel_mean_records(records, torch.from_numpy(valid), edge).numpy()
    want_xyz, want_rgb, want_conf = _voxel_reference(xyz[valid], rgb[valid], conf[valid], edge)
    assert len(got) == len(want_xyz) > 100
    np.testing.assert_array_equal(got[:, :3], want_xyz)
    np.testing.assert_array_equal(unpack_rgb(got[:, 3]), want_rgb)
    np.testing.assert_array_equal(got[:, 4], want_conf)
    host = voxel_downsample(Points(xyz[valid], rgb[valid], conf[valid]), edge)
    np.testing.assert_array_equal(host.xyz, want_xyz)
    np.testing.assert_array_equal(host.rgb, want_rgb)
    np.testing.assert_array_equal(host.confidence, want_conf)
