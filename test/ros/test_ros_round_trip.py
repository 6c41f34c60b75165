"""Two real rclpy processes: cloud_tf_talker.py publishes /tf_static (two send_static calls)
and a PointCloud2 built by da3_ros.ros; cloud_tf_listener.py, a late joiner, reads them with
TfListener/TfBuffer and cloud_to_points. Expected values are recomputed here from the seed."""

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from node_process import ROOT, stop, wait_for_line
from transforms3d.euler import euler2mat

HERE = Path(__file__).resolve().parent
SEED = 11
WAIT_S = 60.0


def ros_domain_id(test_name: str) -> int:
    """ROS_DOMAIN_ID in 101..200 from test name and pid (test/ros uses 1..100)."""
    return zlib.crc32(f'{test_name}:{os.getpid()}'.encode()) % 100 + 101


def run(tmp_path: Path, test_name: str) -> dict:
    # PYTHONPATH: the helpers import the checkout's da3_ros, not the venv's installed copy
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain_id(test_name)),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    env.pop('ROS_LOCALHOST_ONLY', None)
    common = ['--ns', f'/da3_rt_{os.getpid()}', '--timeout', str(WAIT_S)]
    procs = []
    try:
        with open(tmp_path / 'talker.err', 'wb') as err:
            talker = subprocess.Popen(
                [sys.executable, str(HERE / 'cloud_tf_talker.py'), '--seed', str(SEED), *common],
                env=env, stdout=subprocess.PIPE, stderr=err)
        procs.append(talker)
        wait_for_line(talker, b'TF_STATIC_PUBLISHED', WAIT_S)
        with open(tmp_path / 'listener.err', 'wb') as err:
            listener = subprocess.Popen(
                [sys.executable, str(HERE / 'cloud_tf_listener.py'), *common],
                env=env, stdout=subprocess.PIPE, stderr=err)
        procs.append(listener)
        out, _ = listener.communicate(timeout=WAIT_S + 30)
        talker.communicate(timeout=WAIT_S + 30)
    finally:
        for proc in procs:
            stop(proc)
    errors = {p: (tmp_path / f'{p}.err').read_text() for p in ('talker', 'listener')}
    assert (talker.returncode, listener.returncode) == (0, 0), (out, errors)
    return json.loads(out.decode().strip().splitlines()[-1])


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
