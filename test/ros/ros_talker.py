"""Talker half of test_ros_exchange.py: a real rclpy process that publishes known messages.

Publishes, all derived from --seed (test_ros_exchange.py recomputes every value on its own):
- `/tf_static` (reliable, TRANSIENT_LOCAL, KEEP_LAST(1)): one TFMessage, right at start-up, then
  prints `TF_STATIC_PUBLISHED` so that the test can start the listener as a late joiner;
- `<ns>/image`: a 640x480 rgb8 sensor_msgs/Image of seeded pseudo-random bytes;
- `<ns>/rig_depth`: a da3_ros/RigDepth with two CameraDepth entries (32FC1 depth, confidence,
  CameraInfo with K, t_fixed_camera).
It waits for subscriber matching with spin_once (never sleeps), publishes once, and exits when
the subscriber has left. Exit codes: 0 ok, 2 no subscriber in time, 3 subscriber never left.
"""

import argparse
import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import Transform, TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from da3_ros.msg import CameraDepth, RigDepth

RELIABLE = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
TF_STATIC = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
CAMERAS = (('front', 48, 64), ('rear', 24, 32))  # (name, height px, width px)


def stamp(msg_header, seed: int) -> None:
    """Set the stamp shared by every message of the synchronised set."""
    msg_header.stamp.sec = 1_700_000_000 + seed
    msg_header.stamp.nanosec = 123_456_789


def make_image(seed: int) -> Image:
    """640x480 rgb8 image whose bytes are rng(seed).integers(0, 256, (480, 640, 3))."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    msg = Image(height=480, width=640, encoding='rgb8', is_bigendian=0, step=640 * 3)
    stamp(msg.header, seed)
    msg.header.frame_id = 'front_optical'
    msg.data = pixels.tobytes()
    return msg


def make_tf_static(seed: int) -> TFMessage:
    """base_link -> front_optical, a REP-103 optical rotation, translation in metres."""
    tf = TransformStamped()
    tf.header.frame_id = 'base_link'
    tf.header.stamp.sec = 1_700_000_000 + seed
    tf.child_frame_id = 'front_optical'
    tf.transform.translation.x, tf.transform.translation.y = 0.25, -0.125
    tf.transform.translation.z = 1.5 + 0.001 * seed
    q = tf.transform.rotation
    q.x, q.y, q.z, q.w = -0.5, 0.5, -0.5, 0.5
    return TFMessage(transforms=[tf])


def make_camera(index: int, name: str, height: int, width: int, seed: int) -> CameraDepth:
    """Depth 1 + index + 0.05 v + 0.001 u metres (NaN at v=u=0), confidence ((v W + u) % 7) / 7."""
    v, u = np.mgrid[0:height, 0:width]
    depth = (1.0 + index + 0.05 * v + 0.001 * u).astype(np.float32)
    depth[0, 0] = np.nan
    confidence = (((v * width + u) % 7) / 7.0).astype(np.float32)
    cam = CameraDepth(camera_name=name)
    for img, values in ((cam.depth, depth), (cam.confidence, confidence)):
        stamp(img.header, seed)
        img.header.frame_id = f'{name}_optical'
        img.height, img.width, img.encoding = height, width, '32FC1'
        img.is_bigendian, img.step = 0, width * 4
        img.data = values.tobytes()
    focal_px = 500.0 + 10.0 * index
    info = CameraInfo(height=height, width=width, distortion_model='plumb_bob')
    stamp(info.header, seed)
    info.header.frame_id = f'{name}_optical'
    info.k = [focal_px, 0.0, width / 2 - 0.5, 0.0, focal_px, height / 2 - 0.5, 0.0, 0.0, 1.0]
    info.d = [0.1 * index, -0.05, 0.0, 0.0, 0.0]
    cam.camera_info = info
    t_fixed_camera = Transform()
    t_fixed_camera.translation.x, t_fixed_camera.translation.y = 1.0 + index, -2.0
    t_fixed_camera.translation.z = 0.5 * seed
    t_fixed_camera.rotation.z, t_fixed_camera.rotation.w = (0.6, 0.8) if index else (0.0, 1.0)
    cam.t_fixed_camera = t_fixed_camera
    return cam


def make_rig(seed: int) -> RigDepth:
    """RigDepth over CAMERAS in the fixed frame 'odom'."""
    rig = RigDepth(model='da3-small', is_metric=True, scale_factor=1.5)
    stamp(rig.header, seed)
    rig.header.frame_id = 'odom'
    rig.cameras = [make_camera(i, *cam, seed) for i, cam in enumerate(CAMERAS)]
    return rig


def spin_until(node, done, timeout_s: float) -> bool:
    """spin_once until done() is true; False when timeout_s passed first."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        rclpy.spin_once(node, timeout_sec=0.05)
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--seed', type=int, required=True)
    parser.add_argument('--ns', default='/da3_test')
    parser.add_argument('--timeout', type=float, default=60.0, help='seconds per wait')
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node('da3_test_talker')
    try:
        tf_pub = node.create_publisher(TFMessage, '/tf_static', TF_STATIC)
        image_pub = node.create_publisher(Image, f'{args.ns}/image', RELIABLE)
        rig_pub = node.create_publisher(RigDepth, f'{args.ns}/rig_depth', RELIABLE)
        tf_pub.publish(make_tf_static(args.seed))
        print('TF_STATIC_PUBLISHED', flush=True)

        pubs = (tf_pub, image_pub, rig_pub)
        if not spin_until(
            node, lambda: all(p.get_subscription_count() for p in pubs), args.timeout
        ):
            node.get_logger().error('no subscriber matched in time')
            return 2
        image_pub.publish(make_image(args.seed))
        rig_pub.publish(make_rig(args.seed))
        print('PUBLISHED', flush=True)
        if not spin_until(
            node, lambda: not any(p.get_subscription_count() for p in pubs), args.timeout
        ):
            node.get_logger().error('subscriber did not leave in time')
            return 3
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
