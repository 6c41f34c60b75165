"""Helper process of test_depth_node_nav.py: feeds nav_scene_node.py (the depth node on a
rendered scene) one camera and records its Nav2 outputs as raw CDR.

Publishes base_link -> the camera's optical frame on /tf_static (latched, from --T), the
CameraInfo (--K, --size) until the node's /diagnostics say 'ready', then one image at a time
(rgb8, new stamp each) until /da3/obstacles and /da3/scan both came for one set (the first
set may go out before the node has the latched transform: then nothing is built for it).
Writes <out>/manifest.json (ros_io.Recorder). Exit 0, or 1 with the reason on stderr.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import TransformStamped
from ros_io import Recorder, spin_until, wait_diag_value, wait_matched
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage
from transforms3d.quaternions import mat2quat

from da3_ros.ros import qos

OUTPUTS = {'/da3/obstacles': 'sensor_msgs/msg/PointCloud2',
           '/da3/scan': 'sensor_msgs/msg/LaserScan'}


def static_transform(parent: str, child: str, T: np.ndarray) -> TFMessage:
    t = TransformStamped()
    t.header.frame_id, t.child_frame_id = parent, child
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
        float(v) for v in T[:3, 3])
    w, x, y, z = mat2quat(T[:3, :3])
    q = t.transform.rotation
    q.x, q.y, q.z, q.w = float(x), float(y), float(z), float(w)
    return TFMessage(transforms=[t])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--camera', required=True, help='namespace, e.g. /camera')
    parser.add_argument('--frame', required=True, help="the camera's optical frame")
    parser.add_argument('--base', required=True)
    parser.add_argument('--T', required=True, help='JSON (4, 4) base -> camera')
    parser.add_argument('--K', required=True, help='JSON (3, 3)')
    parser.add_argument('--size', type=int, nargs=2, required=True, metavar=('H', 'W'))
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--sets', type=int, default=5, help='at most this many images')
    parser.add_argument('--timeout', type=float, default=30.0)
    args = parser.parse_args()
    H, W = args.size
    K = np.array(json.loads(args.K), np.float64)
    rclpy.init()
    node = rclpy.create_node('da3_test_nav_scene_publisher')
    recorder = Recorder(node, OUTPUTS)
    image_pub = node.create_publisher(Image, f'{args.camera}/image_raw', qos.reliable(10))
    info_pub = node.create_publisher(CameraInfo, f'{args.camera}/camera_info', qos.reliable(10))
    static_pub = node.create_publisher(TFMessage, '/tf_static', qos.TF_STATIC_BROADCASTER)
    rgb = np.random.default_rng(5).integers(0, 256, (H, W, 3), dtype=np.uint8).tobytes()
    published = []

    def info(sec: int) -> CameraInfo:
        msg = CameraInfo(height=H, width=W, distortion_model='plumb_bob', d=[0.0] * 5,
                         k=K.ravel().tolist(), r=np.eye(3).ravel().tolist(),
                         p=np.hstack([K, np.zeros((3, 1))]).ravel().tolist())
        msg.header.frame_id, msg.header.stamp.sec = args.frame, sec
        return msg

    try:
        wait_matched(node, [image_pub, info_pub, static_pub], recorder, args.timeout)
        static_pub.publish(static_transform(args.base, args.frame,
                                            np.array(json.loads(args.T), np.float64)))
        info_pub.publish(info(1_700_000_000))
        wait_diag_value(node, recorder, 'ready', 'true', args.timeout)
        for k in range(args.sets):
            sec = 1_700_000_001 + k
            info_pub.publish(info(sec))
            image = Image(height=H, width=W, encoding='rgb8', step=3 * W, data=rgb)
            image.header.frame_id, image.header.stamp.sec = args.frame, sec
            image_pub.publish(image)
            published.append([f'{args.camera}/image_raw', sec * 10**9, args.frame])
            done = int(recorder.diagnostics.get('sets_processed', '0')) + 1
            spin_until(node, lambda d=done: int(recorder.diagnostics.get('sets_processed', '0'))
                       >= d, args.timeout, f'sets_processed >= {done}')
            try:  # a processed set's messages were published before the diagnostics said so
                spin_until(node, lambda: all(recorder.count(t) for t in OUTPUTS), 2.0,
                           'both Nav2 outputs')
                break
            except TimeoutError:
                continue
        else:
            raise TimeoutError(f'no Nav2 outputs after {args.sets} sets: '
                               f'{ {t: recorder.count(t) for t in OUTPUTS} }')
        recorder.dump(args.out, published)
        return 0
    except TimeoutError as err:
        print(f'nav_scene_publisher: {err}; diagnostics {recorder.diagnostics}',
              file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
