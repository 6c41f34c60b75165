"""Running the SLAM node and its replay helper as real processes in tests, and decoding what
the helper recorded (raw CDR, decoded here with rosbags, independent of rclpy).

Every process gets its own ROS_DOMAIN_ID in 201..230 (Fast DDS allows <= 232), hashed from
the test name and pid as test/nodes does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def slam_env(test_name: str) -> dict:
    domain = zlib.crc32(f'{test_name}:{os.getpid()}'.encode()) % 30 + 201
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    env.pop('ROS_LOCALHOST_ONLY', None)
    return env


def start_slam_node(folder: Path, params: dict, env: dict) -> tuple[subprocess.Popen, Path]:
    params_file, log = folder / 'slam_params.yaml', folder / 'slam_node.log'
    params_file.write_text(yaml.safe_dump({'da3_slam': {'ros__parameters': params}}))
    with open(log, 'wb') as out:
        proc = subprocess.Popen([sys.executable, '-m', 'da3_ros.nodes.slam_node', '--ros-args',
                                 '--params-file', str(params_file)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    return proc, log


def stop_slam_node(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_replay(args: list[str], env: dict, node: subprocess.Popen, log: Path,
               timeout_s: float = 300.0) -> None:
    try:
        done = subprocess.run([sys.executable, str(HERE / 'slam_replay_helper.py'), *args],
                              env=env, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f'replay timed out; node log:\n{log.read_text()[-4000:]}') from err
    assert done.returncode == 0, (
        f'replay exit {done.returncode}\n{done.stderr.decode()[-3000:]}\n'
        f'node (alive: {node.poll() is None}):\n{log.read_text()[-4000:]}')


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
