"""Subscriber of the end-to-end harness (bench/gpu_node_e2e.py): a separate process that
receives every output of the depth node and logs, per message, its header stamp, the wall
clock at receipt and its size; and every /diagnostics report. With --slam: the SLAM node's
map -> odom / base transforms on /tf, its ~/status (chunks, chunk time) and /diagnostics.

    python bench/e2e_recorder.py --cameras CAM_FRONT ... --stop-file stop --out received.json

Outputs are subscribed raw (serialized CDR, no Python deserialisation, so the recorder costs
little and cannot become the bottleneck it measures), with sensor-data reliability (best
effort, as the node publishes by default) and a deep queue. The stamp is read from the CDR
bytes: after the 4-byte encapsulation header, a message starting with std_msgs/Header has
int32 sec and uint32 nanosec; a tf2_msgs/TFMessage has its array length first. Runs until
--stop-file exists, then writes the log (format: bench/e2e_metrics.py). With --ready-file it
first waits until every output topic has a publisher in the ROS graph (the node's), so that
the harness starts the camera publisher only once the first set's outputs can be received.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from tf2_msgs.msg import TFMessage

from da3_ros.msg import RigDepth, SlamStatus
from da3_ros.ros import qos

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_metrics import output_topics  # noqa: E402

TYPES = {'depth': Image, 'confidence': Image, 'camera_info': CameraInfo, 'cloud': PointCloud2,
         'fused_cloud': PointCloud2, 'rig_depth': RigDepth}
OUTPUT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT,
                        history=HistoryPolicy.KEEP_LAST)


def header_stamp_ns(cdr: bytes, offset: int = 4) -> int:
    """Stamp of a CDR (little-endian) message whose Header starts at `offset`."""
    sec, nanosec = struct.unpack_from('<iI', cdr, offset)
    return sec * 1_000_000_000 + nanosec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cameras', nargs='+', required=True)
    parser.add_argument('--namespace', default='da3')
    parser.add_argument('--slam', action='store_true',
                        help="the SLAM node's map TF, ~/status and /diagnostics instead")
    parser.add_argument('--map-frame', default='map')
    parser.add_argument('--stop-file', type=Path, required=True)
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--ready-file', type=Path,
                        help='touched once every output topic has a publisher')
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node('da3_e2e_recorder')
    log: dict[str, list] = {'diagnostics': []}

    def on_output(topic: str, cdr: bytes) -> None:
        log[topic].append((header_stamp_ns(cdr), time.time_ns(), len(cdr)))

    def on_tf(cdr: bytes) -> None:   # uint32 array length, then the first TransformStamped
        if struct.unpack_from('<I', cdr, 4)[0]:
            log['/tf'].append((header_stamp_ns(cdr, 8), time.time_ns(), len(cdr)))

    def on_diag(cdr: bytes) -> None:
        msg = deserialize_message(cdr, DiagnosticArray)
        if any(s.name.startswith('da3_depth') or s.name.startswith('da3_slam')
               for s in msg.status):
            log['diagnostics'].append(
                (time.time_ns(), {kv.key: kv.value for s in msg.status for kv in s.values}))

    def on_slam_tf(cdr: bytes) -> None:   # the SLAM node's map -> odom / base transforms
        msg = deserialize_message(cdr, TFMessage)
        for t in msg.transforms:
            if t.header.frame_id == args.map_frame:
                stamp = t.header.stamp.sec * 1_000_000_000 + t.header.stamp.nanosec
                log['slam_tf'].append((stamp, time.time_ns(), t.child_frame_id))

    def on_slam_status(cdr: bytes) -> None:
        msg = deserialize_message(cdr, SlamStatus)
        log['slam_status'].append((time.time_ns(), msg.chunks, msg.chunk_latency_ms))

    if args.slam:
        log['slam_tf'], log['slam_status'] = [], []
        node.create_subscription(TFMessage, '/tf', on_slam_tf, qos.TF, raw=True)
        node.create_subscription(SlamStatus, '/da3_slam/status', on_slam_status,
                                 qos.reliable(50), raw=True)
    for group, topics in (() if args.slam else
                          output_topics(args.cameras, args.namespace).items()):
        for topic in topics:
            log[topic] = []
            node.create_subscription(TYPES[group], topic,
                                     lambda cdr, t=topic: on_output(t, cdr), OUTPUT_QOS,
                                     raw=True)
    if not args.slam:
        log['/tf'] = []
        node.create_subscription(TFMessage, '/tf', on_tf, qos.TF, raw=True)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, qos.reliable(50),
                             raw=True)
    print('recorder: subscribed', flush=True)
    watched = ['/da3_slam/status'] if args.slam else [t for t in log if t.startswith('/')
                                                      and t != '/tf']
    try:
        while args.ready_file and not args.stop_file.exists():
            if all(node.count_publishers(t) for t in watched):
                time.sleep(0.5)   # graph seen; let the node's writers match our readers too
                args.ready_file.touch()
                break
            rclpy.spin_once(node, timeout_sec=0.1)
        while not args.stop_file.exists():
            rclpy.spin_once(node, timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        args.out.write_text(json.dumps(log))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
