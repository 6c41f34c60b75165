"""Running the SLAM node and its replay helper as real processes in tests, and decoding what
the helper recorded (raw CDR, decoded here with rosbags, independent of rclpy).

Process plumbing (own ROS_DOMAIN_ID, PYTHONPATH=<repo>) is test/node_process.py's.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import yaml
from node_process import ROOT, node_env, run_script, start_node
from node_process import stop as stop_slam_node  # noqa: F401 - used by the tests

HERE = Path(__file__).resolve().parent
slam_env = node_env


def start_slam_node(folder: Path, params: dict, env: dict,
                    simulated: bool = True) -> tuple[subprocess.Popen, Path]:
    """The slam node with `params`; simulated: the simulated predictor stands in for the
    network (simulated_slam_node.py, which also takes the test.simulated_* parameters), else
    the production node module."""
    params_file, log = folder / 'slam_params.yaml', folder / 'slam_node.log'
    params_file.write_text(yaml.safe_dump({'da3_slam': {'ros__parameters': params}}))
    module = str(HERE / 'simulated_slam_node.py') if simulated else 'da3_ros.nodes.slam_node'
    return start_node(module, params_file, env, log), log


def run_replay(args: list[str], env: dict, node: subprocess.Popen, log: Path,
               timeout_s: float = 300.0) -> None:
    run_script(HERE / 'slam_replay_helper.py', args, env, node, log, timeout_s)


def slam_typestore():
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg((ROOT / 'msg' / 'SlamStatus.msg').read_text(),
                                      'da3_ros/msg/SlamStatus'))
    return store


def load_recording(folder: Path) -> dict[str, list]:
    """topic -> decoded messages, in arrival order."""
    manifest, store = json.loads((folder / 'manifest.json').read_text()), slam_typestore()
    return {topic: [store.deserialize_cdr((folder / f).read_bytes(), kind) for f in files]
            for topic, (kind, files) in manifest.items()}


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)


def pose_matrix(position, orientation) -> np.ndarray:
    """geometry_msgs position / quaternion x, y, z, w (rosbags objects) -> (4, 4)."""
    from transforms3d.quaternions import quat2mat
    q = orientation
    T = np.eye(4)
    T[:3, :3] = quat2mat([q.w, q.x, q.y, q.z])
    T[:3, 3] = [position.x, position.y, position.z]
    return T


def cloud_xyzc(msg) -> np.ndarray:
    """PointCloud2 with float32 x, y, z, confidence -> (N, 4) float32."""
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', 'confidence']
    assert msg.point_step == 16 and msg.height == 1
    return np.frombuffer(bytes(msg.data), '<f4').reshape(msg.width, 4)
