"""Depth -> points -> PointCloud2, checked against a closed-form back-projection and decoded
independently: CDR bytes from rclpy are deserialised by rosbags, and the point bytes are read
with a numpy dtype built here from the message's own PointField list."""

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from da3_ros.errors import ConfigError
from da3_ros.ros.errors import CloudError
from da3_ros.ros.pointcloud import (
    CloudConfig,
    Points,
    back_project,
    cloud_to_points,
    depth_to_points,
    fuse_points,
    pack_rgb,
    points_to_cloud,
    voxel_downsample,
)

H, W = 24, 32
K = np.array([[40.0, 0.0, 15.3], [0.0, 42.0, 11.7], [0.0, 0.0, 1.0]])
ROSBAGS = get_typestore(Stores.ROS2_JAZZY)
NUMPY_TYPES = {7: 'f4', 6: 'u4', 8: 'f8'}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def scene(rng):
    """depth (H, W) 0.5..20 m with a NaN and a zero; rgb; confidence 0..1; sky = top 4 rows."""
    depth = rng.uniform(0.5, 20.0, (H, W)).astype(np.float32)
    depth[3, 5], depth[10, 20] = np.nan, 0.0
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    confidence = rng.uniform(0.0, 1.0, (H, W)).astype(np.float32)
    sky = np.zeros((H, W), bool)
    sky[:4] = True
    return depth, rgb, confidence, sky


def closed_form(depth: np.ndarray) -> np.ndarray:
    """X = (u - cx) z / fx, Y = (v - cy) z / fy, Z = z; u column, v row. (H, W, 3) float64."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    z = depth.astype(np.float64)
    return np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], axis=-1)


def decode_independently(msg: PointCloud2) -> tuple:
    """rosbags CDR decode + a dtype built from the decoded PointFields -> (record array, msg)."""
    ros = ROSBAGS.deserialize_cdr(serialize_message(msg), 'sensor_msgs/msg/PointCloud2')
    order = '>' if ros.is_bigendian else '<'
    dtype = np.dtype({'names': [f.name for f in ros.fields],
                      'formats': [order + NUMPY_TYPES[f.datatype] for f in ros.fields],
                      'offsets': [f.offset for f in ros.fields], 'itemsize': ros.point_step})
    return np.frombuffer(ros.data.tobytes(), dtype=dtype), ros


def test_back_projection_matches_closed_form(scene):
    depth = scene[0]
    np.testing.assert_allclose(back_project(depth, K), closed_form(depth), rtol=1e-6)
    p = back_project(depth, K)[7, 19]  # row 7, column 19, by hand
    z = float(depth[7, 19])
    np.testing.assert_allclose(p, [(19 - 15.3) * z / 40.0, (7 - 11.7) * z / 42.0, z], rtol=1e-6)


def test_back_projection_reprojects_with_skew(scene):
    K_skew = K.copy()
    K_skew[0, 1] = 0.7
    xyz = back_project(scene[0], K_skew).reshape(-1, 3).astype(np.float64)
    ok = xyz[:, 2] > 0
    uv1 = (K_skew @ (xyz[ok] / xyz[ok, 2:]).T).T
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(uv1[:, :2], np.stack([u, v], -1).reshape(-1, 2)[ok], atol=1e-4)


def test_cloud_bytes_match_closed_form_with_all_filters(scene):
    depth, rgb, confidence, sky = scene
    cfg = CloudConfig(min_confidence=0.3, min_range_m=1.0, max_range_m=15.0, stride=2)
    header = Header(frame_id='cam_front_optical')
    header.stamp.sec, header.stamp.nanosec = 7, 99
    msg = points_to_cloud(depth_to_points(depth, K, rgb, confidence, sky, cfg), header)

    expected = closed_form(depth)[::2, ::2].reshape(-1, 3)
    conf, colour = confidence[::2, ::2].reshape(-1), rgb[::2, ::2].reshape(-1, 3)
    dist = np.linalg.norm(np.nan_to_num(expected, nan=-1.0), axis=1)
    keep = (np.isfinite(expected[:, 2]) & (expected[:, 2] > 0) & (conf >= 0.3)
            & ~sky[::2, ::2].reshape(-1) & (dist >= 1.0) & (dist <= 15.0))
    assert 20 < keep.sum() < keep.size

    cloud, ros = decode_independently(msg)
    assert [(f.name, f.offset, f.datatype, f.count) for f in ros.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1),
        ('confidence', 16, 7, 1)]
    assert (ros.height, ros.width, ros.point_step) == (1, keep.sum(), 20)
    assert (ros.row_step, ros.is_dense, ros.is_bigendian) == (20 * keep.sum(), True, False)
    assert (ros.header.frame_id, ros.header.stamp.sec, ros.header.stamp.nanosec) == (
        'cam_front_optical', 7, 99)
    xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=1)
    np.testing.assert_allclose(xyz, expected[keep], rtol=1e-6)
    np.testing.assert_array_equal(cloud['confidence'], conf[keep])
    bits = cloud['rgb'].view('<u4').astype(np.int64)  # PCL: float32 holding 0x00RRGGBB
    r, g, b = (colour[keep].astype(np.int64).T)
    np.testing.assert_array_equal(bits, r * 65536 + g * 256 + b)


def test_pcl_packing_by_hand():
    packed = pack_rgb(np.array([[255, 0, 0], [1, 2, 3], [0, 0, 255]], np.uint8))
    assert packed.dtype == np.float32
    assert packed.view(np.uint32).tolist() == [0xFF0000, 0x010203, 0x0000FF]


def test_our_decoder_round_trips(scene):
    depth, rgb, confidence, _ = scene
    points = depth_to_points(depth, K, rgb, confidence)
    back = cloud_to_points(points_to_cloud(points, Header(frame_id='c')))
    np.testing.assert_array_equal(back.xyz, points.xyz)
    np.testing.assert_array_equal(back.rgb, points.rgb)
    np.testing.assert_array_equal(back.confidence, points.confidence)
    empty = cloud_to_points(points_to_cloud(Points(np.zeros((0, 3), np.float32)), Header()))
    assert empty.xyz.shape == (0, 3) and empty.rgb is None and empty.confidence is None


def test_xyz_only_cloud_has_three_fields(scene):
    msg = points_to_cloud(depth_to_points(scene[0], K), Header(frame_id='c'))
    cloud, ros = decode_independently(msg)
    assert [f.name for f in ros.fields] == ['x', 'y', 'z'] and ros.point_step == 12
    assert len(cloud) == H * W - 2  # the NaN and the zero depth are gone


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


def test_voxel_size_in_config_limits_point_density(scene):
    depth = scene[0]
    dense = depth_to_points(depth, K)
    sparse = depth_to_points(depth, K, cfg=CloudConfig(voxel_size_m=2.0))
    keys = np.floor(sparse.xyz / 2.0).astype(int)
    assert len(sparse.xyz) < len(dense.xyz)
    assert len(np.unique(keys, axis=0)) == len(keys)  # at most one point per voxel


def test_fused_cloud_is_each_camera_moved_by_its_transform(scene):
    depth = scene[0]
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


def bad_cloud(fields, data: bytes, width=2, point_step=12) -> PointCloud2:
    msg = PointCloud2(height=1, width=width, point_step=point_step, row_step=width * point_step,
                      fields=fields)
    msg.data = data
    return msg


XYZ = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
       for i, n in enumerate('xyz')]
BAD = [
    (lambda d: depth_to_points(d, K, rgb=np.zeros((H, W), np.uint8)), 'shape_mismatch'),
    (lambda d: depth_to_points(d, K, confidence=np.zeros((H, W + 1))), 'shape_mismatch'),
    (lambda d: depth_to_points(d, K, sky_mask=np.zeros((1, H, W), bool)), 'shape_mismatch'),
    (lambda d: depth_to_points(d[None], K), 'shape_mismatch'),
    (lambda d: fuse_points([depth_to_points(d, K)], [np.full((4, 4), np.nan)]), 'bad_transform'),
    (lambda d: fuse_points([depth_to_points(d, K)], []), 'shape_mismatch'),
    (lambda d: cloud_to_points(bad_cloud(XYZ[:2], bytes(16), point_step=8)), 'missing_field'),
    (lambda d: cloud_to_points(bad_cloud(XYZ, bytes(23))), 'truncated'),
    (lambda d: cloud_to_points(bad_cloud(
        [PointField(name='x', offset=0, datatype=9, count=1)], bytes(24))), 'bad_field'),
    (lambda d: cloud_to_points(bad_cloud(XYZ, bytes(16), point_step=8)), 'bad_field'),
]


@pytest.mark.parametrize(('call', 'cause'), BAD)
def test_bad_cloud_inputs_give_cause(scene, call, cause):
    with pytest.raises(CloudError) as err:
        call(scene[0])
    assert err.value.cause == cause


@pytest.mark.parametrize('kwargs', [{'stride': 0}, {'min_range_m': 5.0, 'max_range_m': 1.0},
                                    {'voxel_size_m': -1.0}, {'voxel_size_m': float('nan')}])
def test_bad_cloud_config_is_rejected(kwargs):
    with pytest.raises(ConfigError):
        CloudConfig(**kwargs)


def test_organised_padded_big_endian_cloud_is_decoded():
    xyz = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    xyz[1, 2] = np.nan  # organised clouds keep invalid points
    rows = np.zeros((2, 3 * 16 + 4), np.uint8)  # point_step 16 (4 pad bytes), row_step 52
    rows[:, : 3 * 16].reshape(2, 3, 16)[..., :12] = xyz.astype('>f4').view(np.uint8).reshape(
        2, 3, 12)
    msg = bad_cloud(XYZ, rows.tobytes(), width=3, point_step=16)
    msg.height, msg.row_step, msg.is_bigendian = 2, 52, True
    np.testing.assert_array_equal(cloud_to_points(msg).xyz, xyz.reshape(-1, 3))
