"""Running the depth node and its helper processes in tests, and decoding what they recorded.

Process plumbing (own ROS_DOMAIN_ID, PYTHONPATH=<repo>) is test/node_process.py's. Decoding
uses rosbags' CDR deserialiser, independent of rclpy.
"""
import json
import subprocess
from pathlib import Path

import numpy as np
import yaml
from node_process import ROOT, node_env, run_script, stop  # noqa: F401 - used by the tests

from da3_ros.offline.bag_output import make_typestore as typestore

HERE = Path(__file__).resolve().parent
ros_env = node_env


def write_params(path: Path, params: dict) -> Path:
    """A ROS 2 parameter file for the node 'da3_depth'."""
    path.write_text(yaml.safe_dump({'da3_depth': {'ros__parameters': params}}))
    return path


def start_node(params_file: Path, env: dict, log: Path, *extra: str) -> subprocess.Popen:
    from node_process import start_node as start
    return start('da3_ros.nodes.depth_node', params_file, env, log, *extra)


def run_helper(script: str, args: list[str], env: dict, node: subprocess.Popen,
               node_log: Path, timeout_s: float = 150.0) -> None:
    """Run test/nodes/<script> to completion; fail with both logs if it or the node fails."""
    run_script(HERE / script, args, env, node, node_log, timeout_s)


class Recording:
    """What a helper recorded: outputs[topic] = [decoded messages], inputs, diagnostics."""

    def __init__(self, folder: Path):
        manifest = json.loads((folder / 'manifest.json').read_text())
        store = typestore()
        self.outputs = {
            topic: [store.deserialize_cdr((folder / f).read_bytes(), kind) for f in files]
            for topic, (kind, files) in manifest['outputs'].items()}
        self.inputs = manifest['inputs']  # [topic, stamp_ns, frame_id] in publishing order
        self.diagnostics = manifest['diagnostics']
        self.levels = manifest.get('levels', {})  # status name -> worst level reported


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)


def image_array(msg) -> np.ndarray:
    """32FC1 Image -> (H, W) float32 (independent of da3_ros.ros.image_conversion)."""
    assert msg.encoding == '32FC1' and msg.is_bigendian == 0 and msg.step == 4 * msg.width
    return np.frombuffer(bytes(msg.data), '<f4').reshape(msg.height, msg.width)


def cloud_arrays(msg) -> dict[str, np.ndarray]:
    """PointCloud2 -> {field name: (N,) array}, from its own fields/offsets (rgb as uint32)."""
    kinds = {7: '<f4', 8: '<f8', 6: '<u4', 2: '<u1'}
    dtype = np.dtype({'names': [f.name for f in msg.fields],
                      'formats': ['<u4' if f.name == 'rgb' else kinds[f.datatype]
                                  for f in msg.fields],
                      'offsets': [f.offset for f in msg.fields], 'itemsize': msg.point_step})
    assert msg.height == 1 and msg.row_step == msg.point_step * msg.width
    data = np.frombuffer(bytes(msg.data), dtype)
    assert data.size == msg.width
    return {name: data[name] for name in dtype.names}


def back_project(depth: np.ndarray, K: np.ndarray, stride: int) -> np.ndarray:
    """(H, W) z-depth through pinhole K (pixel centres at integer u, v), every stride-th pixel
    -> (h*w, 3) float64 camera-frame points."""
    v, u = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride].astype(np.float64)
    z = depth[::stride, ::stride].astype(np.float64)
    y = (v - K[1, 2]) / K[1, 1]
    x = (u - K[0, 2] - K[0, 1] * y) / K[0, 0]
    return np.stack([x * z, y * z, z], -1).reshape(-1, 3)


def transform_matrix(t) -> np.ndarray:
    """geometry_msgs/Transform (rosbags) -> (4, 4); quaternion x, y, z, w."""
    from transforms3d.quaternions import quat2mat
    q = t.rotation
    T = np.eye(4)
    T[:3, :3] = quat2mat([q.w, q.x, q.y, q.z])
    T[:3, 3] = [t.translation.x, t.translation.y, t.translation.z]
    return T
