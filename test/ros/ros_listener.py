"""Listener half of test_ros_exchange.py: a real rclpy process that reports what it received.

Subscribes to `/tf_static` (reliable, TRANSIENT_LOCAL, KEEP_LAST(1)), `<ns>/image` and
`<ns>/rig_depth` (reliable), spins until one message of each is in (or --timeout seconds pass),
then prints ONE JSON line summarising the messages (stamps, frames, encodings, sha256 of data, K,
transforms) and exits. It judges nothing: the test asserts on the JSON. Exit code 0 when all
three arrived, 2 otherwise (the JSON then holds what did arrive).
"""

import argparse
import hashlib
import json
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

from da3_ros.msg import RigDepth

RELIABLE = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
TF_STATIC = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def header_summary(header) -> dict:
    """std_msgs/Header -> {'stamp': [sec, nanosec], 'frame_id'}."""
    return {'stamp': [header.stamp.sec, header.stamp.nanosec], 'frame_id': header.frame_id}


def transform_summary(transform) -> dict:
    """geometry_msgs/Transform -> translation [x, y, z] and rotation [x, y, z, w]."""
    t, q = transform.translation, transform.rotation
    return {'translation': [t.x, t.y, t.z], 'rotation_xyzw': [q.x, q.y, q.z, q.w]}


def image_summary(msg: Image) -> dict:
    """Header, geometry, encoding and sha256 of the bytes; NaN count for 32FC1."""
    data = bytes(msg.data)
    summary = header_summary(msg.header)
    summary.update(
        height=msg.height,
        width=msg.width,
        encoding=msg.encoding,
        step=msg.step,
        is_bigendian=msg.is_bigendian,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    if msg.encoding == '32FC1':
        summary['nan_count'] = int(np.isnan(np.frombuffer(data, dtype='<f4')).sum())
    return summary


def rig_summary(msg: RigDepth) -> dict:
    """RigDepth fields, and per camera: depth, confidence, CameraInfo (K, D), t_fixed_camera."""
    cameras = []
    for cam in msg.cameras:
        info = cam.camera_info
        cameras.append(
            {
                'camera_name': cam.camera_name,
                'depth': image_summary(cam.depth),
                'confidence': image_summary(cam.confidence),
                'camera_info': dict(
                    header_summary(info.header),
                    height=info.height,
                    width=info.width,
                    distortion_model=info.distortion_model,
                    k=list(info.k),
                    d=list(info.d),
                ),
                't_fixed_camera': transform_summary(cam.t_fixed_camera),
            }
        )
    return dict(
        header_summary(msg.header),
        model=msg.model,
        is_metric=msg.is_metric,
        scale_factor=msg.scale_factor,
        cameras=cameras,
    )


def tf_summary(msg: TFMessage) -> list:
    """One dict per TransformStamped: header, child frame, translation, rotation."""
    return [
        dict(
            header_summary(tf.header),
            child_frame_id=tf.child_frame_id,
            **transform_summary(tf.transform),
        )
        for tf in msg.transforms
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--ns', default='/da3_test')
    parser.add_argument('--timeout', type=float, default=60.0, help='seconds to wait for all')
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node('da3_test_listener')
    got = {}

    def keep(key, summarise):
        return lambda msg: got.setdefault(key, summarise(msg))

    node.create_subscription(TFMessage, '/tf_static', keep('tf_static', tf_summary), TF_STATIC)
    node.create_subscription(Image, f'{args.ns}/image', keep('image', image_summary), RELIABLE)
    node.create_subscription(RigDepth, f'{args.ns}/rig_depth', keep('rig', rig_summary), RELIABLE)
    deadline = time.monotonic() + args.timeout
    try:
        while len(got) < 3 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps(got, sort_keys=True), flush=True)
    return 0 if len(got) == 3 else 2


if __name__ == '__main__':
    sys.exit(main())
