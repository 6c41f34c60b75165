"""Depth-node outputs of every set -> a rosbag2 (sqlite3 or MCAP), as `ros2 bag record` would
store them: CDR from rclpy's own serialiser, log time = header stamp.

Topics (the depth node's, da3_ros/nodes/depth_node.py): per camera <ns>/da3/{depth, confidence,
camera_info, points, depth_colorized}; rig da3/points (fused) and da3/rig_depth; /tf with the
DA3 camera poses; /tf_static copied through from the input with its QoS (so playback latches).
Other stages add their messages through `write` (offline/slam_stage.py: the SLAM's TF, Path and
map). With no depth outputs published, the bag holds /tf_static and those messages only.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from rclpy.serialization import serialize_message
from tf2_msgs.msg import TFMessage

from da3_ros.errors import ConfigError
from da3_ros.offline.rig_frame import CameraSource, RawMessage, SetResult
from da3_ros.ros.time_sync import stamp_to_ns

STORAGES = ('mcap', 'sqlite3')
# output -> topic name under <camera ns>/<output namespace>/ (equal to TOPIC_NAMES of
# ros/depth/publishers.py, which a test checks; kept apart so offline runs need no publishers)
TOPIC_NAMES = {'depth': 'depth', 'confidence': 'confidence', 'camera_info': 'camera_info',
               'cloud': 'points', 'colorized_depth': 'depth_colorized'}
MSGTYPES = {'depth': 'sensor_msgs/msg/Image', 'confidence': 'sensor_msgs/msg/Image',
            'camera_info': 'sensor_msgs/msg/CameraInfo', 'cloud': 'sensor_msgs/msg/PointCloud2',
            'colorized_depth': 'sensor_msgs/msg/Image'}


def da3_msg_dir() -> Path:
    """Folder with CameraDepth.msg and RigDepth.msg: the source tree's msg/, else the installed
    share/da3_ros/msg of a prefix on AMENT_PREFIX_PATH (a sourced workspace) or of the running
    Python's prefix (scripts/setup.sh installs into .venv, with no AMENT_PREFIX_PATH set)."""
    candidates = [Path(__file__).resolve().parents[2] / 'msg']
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    candidates += [Path(p) / 'share' / 'da3_ros' / 'msg' for p in prefixes + [sys.prefix]]
    for folder in candidates:
        if (folder / 'RigDepth.msg').is_file():
            return folder
    raise ConfigError(f'RigDepth.msg not found in {[str(c) for c in candidates]}')


def make_typestore():
    """rosbags Jazzy typestore plus da3_ros/msg/{CameraDepth, RigDepth} (for MCAP schemas)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    folder = da3_msg_dir()
    types = {}
    for name in ('CameraDepth', 'RigDepth'):
        types.update(get_types_from_msg((folder / f'{name}.msg').read_text(),
                                        f'da3_ros/msg/{name}'))
    store.register(types)
    return store


class BagWriter:
    """SetConsumer that writes every output message of every set to one new bag."""

    def __init__(self, path: Path, storage: str, cameras: tuple[CameraSource, ...],
                 publish: frozenset[str], passthrough: tuple[RawMessage, ...] = (),
                 output_namespace: str = 'da3'):
        """path: the bag folder to create (must not exist); storage: 'mcap' or 'sqlite3';
        publish: which outputs to write (names of ros/depth/params.py OUTPUTS), as the node's
        publish.* parameters."""
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise ConfigError(f'storage must be one of {STORAGES}, got {storage!r}')
        self.typestore = make_typestore()
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        # version 9 is the metadata layout Jazzy's rosbag2 writes
        self.writer = Writer(path, version=9, storage_plugin=plugin)
        self.writer.open()
        self.prefixes = [f"{c.namespace.rstrip('/')}/{output_namespace}" for c in cameras]
        self.rig_prefix = f'/{output_namespace}'
        self.publish = publish
        self.connections = {}
        self.counts: dict[str, int] = {}
        for raw in passthrough:
            self._write_raw(raw)

    def _connection(self, topic: str, msgtype: str, qos=()):
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(
                topic, msgtype, typestore=self.typestore, offered_qos_profiles=list(qos))
        return self.connections[topic]

    def write(self, topic: str, msgtype: str, msg, stamp_ns: int) -> None:
        """Serialise and write one rclpy message (log time stamp_ns); also used by other
        stages (the SLAM's TF and Path), before close()."""
        self.writer.write(self._connection(topic, msgtype), stamp_ns, serialize_message(msg))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def _write_raw(self, raw: RawMessage) -> None:
        """Copy a message through; its type must be one the Jazzy typestore knows."""
        conn = self._connection(raw.topic, raw.msgtype, raw.qos)
        self.writer.write(conn, raw.stamp_ns, raw.data)
        self.counts[raw.topic] = self.counts.get(raw.topic, 0) + 1

    def consume(self, result: SetResult) -> None:
        out, stamp_ns = result.outputs, result.frame.stamp_ns
        if out is None:         # no per-set forward in this run (e.g. --slam alone)
            return
        for prefix, cam in zip(self.prefixes, out.cameras, strict=True):
            for name, topic in TOPIC_NAMES.items():
                msg = getattr(cam, name)
                if msg is not None and name in self.publish:
                    self.write(f'{prefix}/{topic}', MSGTYPES[name], msg,
                                stamp_to_ns(msg.header.stamp))
        if out.fused_cloud is not None and 'fused_cloud' in self.publish:
            self.write(f'{self.rig_prefix}/points', MSGTYPES['cloud'], out.fused_cloud,
                        stamp_ns)
        if out.rig_depth is not None and 'rig_depth' in self.publish:
            self.write(f'{self.rig_prefix}/rig_depth', 'da3_ros/msg/RigDepth', out.rig_depth,
                        stamp_ns)
        if out.transforms and 'tf' in self.publish:
            self.write('/tf', 'tf2_msgs/msg/TFMessage', TFMessage(transforms=out.transforms),
                        stamp_ns)

    def close(self, success: bool) -> None:
        self.writer.close()
