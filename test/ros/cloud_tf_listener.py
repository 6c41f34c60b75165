"""Listener half of test_ros_round_trip.py: a real rclpy process using da3_ros.ros's TfListener,
TfBuffer and cloud decoder.

Spins until a `<ns>/points` cloud is in and TfBuffer can answer lookup('cam_rear', 'cam_front')
from /tf_static, then prints ONE JSON line (the lookup, the frames, the decoded cloud and the
cloud moved into base_link) and exits 0; exits 2 on timeout. It judges nothing.
"""

import argparse
import json
import sys
import time

import rclpy
from sensor_msgs.msg import PointCloud2

from da3_ros.geometry.points import transform_points
from da3_ros.ros.errors import TfError
from da3_ros.ros.pointcloud import cloud_to_points
from da3_ros.ros.qos import reliable
from da3_ros.ros.tf_buffer import TfBuffer, TfListener


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--ns', required=True)
    parser.add_argument('--timeout', type=float, default=60.0)
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node('da3_cloud_tf_listener')
    buffer = TfBuffer()
    TfListener(node, buffer, static_only=True)
    clouds = []
    node.create_subscription(PointCloud2, f'{args.ns}/points', clouds.append, reliable())

    def rear_from_front():
        try:
            return buffer.lookup('cam_rear', 'cam_front')
        except TfError:
            return None

    deadline = time.monotonic() + args.timeout
    try:
        while (not clouds or rear_from_front() is None) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if not clouds or rear_from_front() is None:
        print(json.dumps({'clouds': len(clouds), 'frames': sorted(buffer.frames())}), flush=True)
        return 2
    msg = clouds[0]
    points = cloud_to_points(msg)
    in_base = transform_points(points, buffer.lookup('base_link', msg.header.frame_id))
    print(json.dumps({
        'T_rear_front': rear_from_front().tolist(),
        'frames': sorted(buffer.frames()),
        'frame_id': msg.header.frame_id,
        'stamp': [msg.header.stamp.sec, msg.header.stamp.nanosec],
        'fields': [f.name for f in msg.fields],
        'xyz': points.xyz.tolist(),
        'rgb': points.rgb.tolist(),
        'confidence': points.confidence.tolist(),
        'xyz_base': in_base.xyz.tolist(),
    }), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
