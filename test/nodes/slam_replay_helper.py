"""Helper process (not a test): replays a ground-truth sequence as N tiny camera streams to the
SLAM node, waiting for the node's ~/status at every chunk boundary (flow control, no sleeps),
records its outputs as raw CDR, then calls ~/save_map and ~/reset.

Flags: --odom also publishes /tf_static base_link -> cam0 and /tf odom -> base_link per frame;
--prior-only only waits for the latched ~/prior_map and ~/prior_path.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from da3_ros.msg import SlamStatus
from da3_ros.ros import qos
from da3_ros.ros.tf_buffer import TfBroadcaster, make_transform_stamped, ns_to_stamp
from da3_ros.sim.routes import load_tum

NS = '/da3_slam'
RECORDED = {'/tf': 'tf2_msgs/msg/TFMessage', f'{NS}/path': 'nav_msgs/msg/Path',
            f'{NS}/map': 'sensor_msgs/msg/PointCloud2',
            f'{NS}/keyframes': 'geometry_msgs/msg/PoseArray',
            f'{NS}/loop_closures': 'visualization_msgs/msg/MarkerArray',
            f'{NS}/status': 'da3_ros/msg/SlamStatus'}
PRIOR = {f'{NS}/prior_map': 'sensor_msgs/msg/PointCloud2', f'{NS}/prior_path':
         'nav_msgs/msg/Path'}


def msg_class(name: str):
    import importlib
    package, _, kind = name.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), kind)


def spin_until(node, done, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out waiting for {what}')
        rclpy.spin_once(node, timeout_sec=0.02)


def call(node, name: str) -> Trigger.Response:
    client = node.create_client(Trigger, f'{NS}/{name}')
    spin_until(node, client.service_is_ready, 30.0, f'service {name}')
    future = client.call_async(Trigger.Request())
    spin_until(node, future.done, 60.0, f'{name} response')
    return future.result()


def T_base_cam0() -> np.ndarray:
    """REP-103 base_link (x forward, z up) -> optical camera (z forward, y down)."""
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    T[:3, 3] = [1.0, 0.0, 1.5]
    return T


def stamp_of(gt, i: int) -> int:
    return int(round(gt.stamps_s[i] * 1e9))


def odom_pose(gt, i: int, T_cam_base: np.ndarray) -> np.ndarray:
    """T_odom_base of frame i: GT base pose under a slow yaw drift (map->odom not identity)."""
    drift = np.eye(4)
    c, s = np.cos(1e-3 * i), np.sin(1e-3 * i)
    drift[:2, :2] = [[c, -s], [s, c]]
    return drift @ gt.T_world_cam[i] @ T_cam_base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--gt'), ap.add_argument('--out', required=True)
    ap.add_argument('--cameras', type=int, default=1)
    ap.add_argument('--frames', type=int, default=0)
    ap.add_argument('--chunk', type=int, nargs=2, default=(40, 20))
    ap.add_argument('--odom', action='store_true')
    ap.add_argument('--prior-only', action='store_true')
    args = ap.parse_args()
    rclpy.init()
    node = Node('slam_replay_helper')
    topics = PRIOR if args.prior_only else RECORDED
    raw = {t: [] for t in topics}
    subs = [node.create_subscription(msg_class(k), t, lambda m, t=t: raw[t].append(m),
                                     qos.TF if t == '/tf' else (qos.TF_STATIC_LISTENER
                                     if t in PRIOR else qos.reliable(100)), raw=True)
            for t, k in topics.items()]
    if args.prior_only:
        spin_until(node, lambda: all(raw.values()), 30.0, 'latched prior map and path')
    else:
        replay(node, args, raw, subs)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    manifest, n = {}, 0
    for topic, messages in raw.items():
        files = []
        for data in messages:
            (folder / f'{n}.cdr').write_bytes(data)
            files.append(f'{n}.cdr')
            n += 1
        manifest[topic] = [topics[topic], files]
    (folder / 'manifest.json').write_text(json.dumps(manifest))
    node.destroy_node()
    rclpy.shutdown()


def replay(node, args, raw: dict, subs: list) -> None:
    gt = load_tum(args.gt)
    pubs = [node.create_publisher(Image, f'/cam{i}/image_raw', qos.reliable(100))
            for i in range(args.cameras)]
    tf = TfBroadcaster(node)
    outs = pubs + (list(tf.publishers) if args.odom else [])
    spin_until(node, lambda: all(p.get_subscription_count() for p in outs)
               and all(s.get_publisher_count() for s in subs), 60.0, 'matching')
    if args.odom:
        tf.send_static([make_transform_stamped('base_link', 'cam0_optical', T_base_cam0(), 0)])
    status = []
    node.create_subscription(SlamStatus, f'{NS}/status', status.append, qos.reliable(100))
    size, overlap = args.chunk
    T_cam_base = np.linalg.inv(T_base_cam0())
    lead = 3            # odometry is published this many frames ahead of the images
    for i in range(-lead, args.frames):
        j = i + lead
        if args.odom and j < args.frames:   # odometry = GT with a slow yaw drift
            tf.send([make_transform_stamped('odom', 'base_link', odom_pose(gt, j, T_cam_base),
                                            stamp_of(gt, j))])
        if i < 0:
            continue
        if i == 0 and args.odom:   # the node's TF subscriptions receive /tf_static and the
            end = time.monotonic() + 1.0   # lead odometry before the first image (other
            while time.monotonic() < end:  # topics, no ordering between them)
                rclpy.spin_once(node, timeout_sec=0.1)
        stamp_ns = stamp_of(gt, i)
        for c, pub in enumerate(pubs):
            msg = Image(height=4, width=4, encoding='rgb8', step=12, data=bytes(48))
            msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp_ns), f'cam{c}_optical'
            pub.publish(msg)
        done = i + 1
        if done >= size and (done - size) % (size - overlap) == 0:
            spin_until(node, lambda d=done: any(s.frames == d for s in status), 120.0,
                       f'status after frame {done}')
    spin_until(node, lambda: raw[f'{NS}/map'] and deserialize_message(
        raw[f'{NS}/status'][-1], SlamStatus).frames == args.frames, 30.0, 'final outputs')
    response = call(node, 'save_map')
    assert response.success, response.message
    response = call(node, 'reset')
    assert response.success, response.message
    # the raw recording is its own subscription: wait until it too has the reset status
    spin_until(node, lambda: deserialize_message(raw[f'{NS}/status'][-1], SlamStatus).state
               == 'reset', 30.0, 'reset status in the recording')


if __name__ == '__main__':
    main()
