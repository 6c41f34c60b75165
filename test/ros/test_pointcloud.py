"""Points -> PointCloud2 and back (da3_ros/ros/pointcloud.py), checked against a closed-form
back-projection and decoded independently: CDR bytes from rclpy are deserialised by rosbags,
and the point bytes are read with a numpy dtype built here from the message's own PointField
list."""

import numpy as np
import pytest
from pinhole_scene import H, K, W, closed_form
from rclpy.serialization import serialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from da3_ros.geometry.points import (
    CloudConfig,
    Points,
    depth_to_points,
)
from da3_ros.ros.errors import CloudError
from da3_ros.ros.pointcloud import cloud_to_points, packed_to_cloud, points_to_cloud

ROSBAGS = get_typestore(Stores.ROS2_JAZZY)
NUMPY_TYPES = {7: 'f4', 6: 'u4', 8: 'f8'}


def decode_independently(msg: PointCloud2) -> tuple:
    """rosbags CDR decode + a dtype built from the decoded PointFields -> (record array, msg)."""
    ros = ROSBAGS.deserialize_cdr(serialize_message(msg), 'sensor_msgs/msg/PointCloud2')
    order = '>' if ros.is_bigendian else '<'
    dtype = np.dtype({'names': [f.name for f in ros.fields],
                      'formats': [order + NUMPY_TYPES[f.datatype] for f in ros.fields],
                      'offsets': [f.offset for f in ros.fields], 'itemsize': ros.point_step})
    return np.frombuffer(ros.data.tobytes(), dtype=dtype), ros


def test_cloud_bytes_match_closed_form_with_all_filters(pinhole):
    depth, rgb, confidence, sky = pinhole
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


def test_our_decoder_round_trips(pinhole):
    depth, rgb, confidence, _ = pinhole
    points = depth_to_points(depth, K, rgb, confidence)
    back = cloud_to_points(points_to_cloud(points, Header(frame_id='c')))
    np.testing.assert_array_equal(back.xyz, points.xyz)
    np.testing.assert_array_equal(back.rgb, points.rgb)
    np.testing.assert_array_equal(back.confidence, points.confidence)
    empty = cloud_to_points(points_to_cloud(Points(np.zeros((0, 3), np.float32)), Header()))
    assert empty.xyz.shape == (0, 3) and empty.rgb is None and empty.confidence is None


def test_xyz_only_cloud_has_three_fields(pinhole):
    msg = points_to_cloud(depth_to_points(pinhole[0], K), Header(frame_id='c'))
    cloud, ros = decode_independently(msg)
    assert [f.name for f in ros.fields] == ['x', 'y', 'z'] and ros.point_step == 12
    assert len(cloud) == H * W - 2  # the NaN and the zero depth are gone


def bad_cloud(fields, data: bytes, width=2, point_step=12) -> PointCloud2:
    msg = PointCloud2(height=1, width=width, point_step=point_step, row_step=width * point_step,
                      fields=fields)
    msg.data = data
    return msg


XYZ = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
       for i, n in enumerate('xyz')]
BAD = [
    (lambda d: cloud_to_points(bad_cloud(XYZ[:2], bytes(16), point_step=8)), 'missing_field'),
    (lambda d: cloud_to_points(bad_cloud(XYZ, bytes(23))), 'truncated'),
    (lambda d: cloud_to_points(bad_cloud(
        [PointField(name='x', offset=0, datatype=9, count=1)], bytes(24))), 'bad_field'),
    (lambda d: cloud_to_points(bad_cloud(XYZ, bytes(16), point_step=8)), 'bad_field'),
    (lambda d: packed_to_cloud(np.zeros((3, 6), np.float32), Header()), 'shape_mismatch'),
]


@pytest.mark.parametrize(('call', 'cause'), BAD)
def test_bad_cloud_inputs_give_cause(pinhole, call, cause):
    with pytest.raises(CloudError) as err:
        call(pinhole[0])
    assert err.value.cause == cause


def test_organised_padded_big_endian_cloud_is_decoded():
    xyz = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    xyz[1, 2] = np.nan  # organised clouds keep invalid points
    rows = np.zeros((2, 3 * 16 + 4), np.uint8)  # point_step 16 (4 pad bytes), row_step 52
    rows[:, : 3 * 16].reshape(2, 3, 16)[..., :12] = xyz.astype('>f4').view(np.uint8).reshape(
        2, 3, 12)
    msg = bad_cloud(XYZ, rows.tobytes(), width=3, point_step=16)
    msg.height, msg.row_step, msg.is_bigendian = 2, 52, True
    np.testing.assert_array_equal(cloud_to_points(msg).xyz, xyz.reshape(-1, 3))
