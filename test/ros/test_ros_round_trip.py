"""Two real rclpy processes: cloud_tf_talker.py publishes /tf_static (two send_static calls)
and a PointCloud2 built by da3_ros.ros; cloud_tf_listener.py, a late joiner, reads them with
TfListener/TfBuffer and cloud_to_points. Expected values are recomputed here from the seed."""

import os
from pathlib import Path

import numpy as np
from late_joiner import talker_then_late_listener
from transforms3d.euler import euler2mat

HERE = Path(__file__).resolve().parent
SEED = 11
WAIT_S = 60.0


def run(tmp_path: Path, test_name: str) -> dict:
    """ROS_DOMAIN_ID in 101..200 (test_ros_exchange.py uses 1..100)."""
    common = ['--ns', f'/da3_rt_{os.getpid()}', '--timeout', str(WAIT_S)]
    return talker_then_late_listener(
        tmp_path, test_name, 101, ['cloud_tf_talker.py', '--seed', str(SEED), *common],
        ['cloud_tf_listener.py', *common], WAIT_S)


def T_base_cam(yaw_rad: float, xyz: list) -> np.ndarray:
    """Optical frame (z forward, x right, y down) turned by yaw about base_link's z axis."""
    optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # cols: x, y, z
    T = np.eye(4)
    T[:3, :3] = euler2mat(0.0, 0.0, yaw_rad) @ optical
    T[:3, 3] = xyz
    return T


def test_static_tf_and_cloud_reach_a_late_listener(tmp_path, request):
    got = run(tmp_path, request.node.nodeid)

    T_base_front = T_base_cam(0.0, [1.5, 0.0, 1.2])
    T_base_rear = T_base_cam(np.pi, [-0.5, 0.1, 1.3])
    assert got['frames'] == ['base_link', 'cam_front', 'cam_rear']  # both send_static calls
    np.testing.assert_allclose(got['T_rear_front'], np.linalg.inv(T_base_rear) @ T_base_front,
                               atol=1e-9)

    rng = np.random.default_rng(SEED)
    depth = rng.uniform(1.0, 9.0, (12, 16)).astype(np.float32)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    confidence = rng.uniform(0.0, 1.0, (12, 16)).astype(np.float32)
    v, u = np.mgrid[0:12, 0:16]
    z = depth.astype(np.float64)
    xyz = np.stack([(u - 7.5) * z / 20.0, (v - 5.5) * z / 20.0, z], -1).reshape(-1, 3)
    keep = confidence.reshape(-1) >= 0.5
    assert (got['frame_id'], got['stamp']) == ('cam_front', [1_700_000_000, 250_000_000])
    assert got['fields'] == ['x', 'y', 'z', 'rgb', 'confidence']
    np.testing.assert_allclose(got['xyz'], xyz[keep], rtol=1e-6)
    np.testing.assert_array_equal(got['rgb'], rgb.reshape(-1, 3)[keep])
    np.testing.assert_array_equal(np.float32(got['confidence']), confidence.reshape(-1)[keep])
    xyz_base = xyz[keep] @ T_base_front[:3, :3].T + T_base_front[:3, 3]
    np.testing.assert_allclose(got['xyz_base'], xyz_base, rtol=1e-5, atol=1e-5)
    assert (np.array(got['xyz_base'])[:, 0] > 1.5 + 0.99).all()  # z >= 1 m ahead of cam_front
