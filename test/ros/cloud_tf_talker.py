"""Talker half of test_ros_round_trip.py: publishes /tf_static and a PointCloud2 built by
da3_ros.ros, as a real rclpy process.

- /tf_static via TfBroadcaster: base_link -> cam_front, then (a second send_static call)
  base_link -> cam_rear; prints TF_STATIC_PUBLISHED so the listener can start as a late joiner;
- `<ns>/points` (reliable): depth_to_points + points_to_cloud of the scene in make_scene().
Waits for matching with spin_once (never sleeps), publishes the cloud once, exits when the
subscriber has left. Exit codes: 0 ok, 2 no subscriber in time, 3 subscriber never left.
"""

import argparse
import sys
import time

import numpy as np
import rclpy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from transforms3d.euler import euler2mat

from da3_ros.geometry.points import CloudConfig, depth_to_points
from da3_ros.ros.pointcloud import points_to_cloud
from da3_ros.ros.qos import reliable
from da3_ros.ros.tf_buffer import TfBroadcaster, make_transform_stamped

STAMP_NS = 1_700_000_000_250_000_000


def rig_transform(yaw_rad: float, xyz: tuple) -> np.ndarray:
    """T_base_cam for an optical frame (z forward) turned by yaw about base z."""
    T = np.eye(4)
    T[:3, :3] = euler2mat(0.0, 0.0, yaw_rad) @ euler2mat(-np.pi / 2, 0.0, -np.pi / 2)
    T[:3, 3] = xyz
    return T


def make_scene(seed: int) -> tuple:
    """depth (12, 16) metres, rgb, confidence and K, all from the seed."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 9.0, (12, 16)).astype(np.float32)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    confidence = rng.uniform(0.0, 1.0, (12, 16)).astype(np.float32)
    K = np.array([[20.0, 0.0, 7.5], [0.0, 20.0, 5.5], [0.0, 0.0, 1.0]])
    return depth, rgb, confidence, K


def spin_until(node, done, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        rclpy.spin_once(node, timeout_sec=0.05)
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--seed', type=int, required=True)
    parser.add_argument('--ns', required=True)
    parser.add_argument('--timeout', type=float, default=60.0)
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node('da3_cloud_tf_talker')
    try:
        tf = TfBroadcaster(node)
        tf.send_static([make_transform_stamped(
            'base_link', 'cam_front', rig_transform(0.0, (1.5, 0.0, 1.2)), STAMP_NS)])
        tf.send_static([make_transform_stamped(
            'base_link', 'cam_rear', rig_transform(np.pi, (-0.5, 0.1, 1.3)), STAMP_NS)])
        print('TF_STATIC_PUBLISHED', flush=True)
        cloud_pub = node.create_publisher(PointCloud2, f'{args.ns}/points', reliable())
        pubs = (cloud_pub, tf.publishers[1])
        if not spin_until(node, lambda: all(p.get_subscription_count() for p in pubs),
                          args.timeout):
            return 2
        depth, rgb, confidence, K = make_scene(args.seed)
        points = depth_to_points(depth, K, rgb, confidence, cfg=CloudConfig(min_confidence=0.5))
        header = Header(frame_id='cam_front')
        header.stamp.sec, header.stamp.nanosec = divmod(STAMP_NS, 1_000_000_000)
        cloud_pub.publish(points_to_cloud(points, header))
        if not spin_until(node, lambda: not any(p.get_subscription_count() for p in pubs),
                          args.timeout):
            return 3
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
