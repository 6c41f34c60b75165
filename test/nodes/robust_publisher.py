"""Helper process of test_depth_node_robustness.py: sends the depth node one bad case after
another on two cameras, /rob_a (raw rgb8 Image) and /rob_b (jpeg CompressedImage), with good
sets before, between and after, and records /da3/rig_depth and the last /diagnostics.

After each message it waits until the node's diagnostics count that camera's arrival, so the
node sees the messages in exactly this order (topics are not ordered among each other).
Stamps are seconds after T0; node settings: slop 0.01 s, max_wait 0.5 s (see the test).
Exit 0 on success, 1 with the reason on stderr otherwise.
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import rclpy
from ros_io import Recorder, spin_until, wait_diag, wait_matched
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from da3_ros.ros import qos

T0_NS = 1_700_000_000 * 10**9
H, W = 48, 64


def stamped(msg, t_s: float, frame: str):
    msg.header.frame_id = frame
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(T0_NS + round(t_s * 1e9), 10**9)
    return msg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--timeout', type=float, default=60.0)
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    jpeg = cv2.imencode('.jpg', rgb)[1].tobytes()

    rclpy.init()
    node = rclpy.create_node('da3_test_robust_publisher')
    recorder = Recorder(node, {'/da3/rig_depth': 'da3_ros/msg/RigDepth'})
    pub_a = node.create_publisher(Image, '/rob_a/image_raw', qos.reliable(10))
    pub_b = node.create_publisher(CompressedImage, '/rob_b/image_raw/compressed',
                                  qos.reliable(10))
    info_a = node.create_publisher(CameraInfo, '/rob_a/camera_info', qos.reliable(10))
    sent = {'rob_a': 0, 'rob_b': 0}
    sets = 0

    def send_a(t_s: float, **fields) -> None:
        values = {'height': H, 'width': W, 'encoding': 'rgb8', 'step': W * 3,
                  'data': rgb.tobytes(), **fields}
        pub_a.publish(stamped(Image(**values), t_s, 'rob_a'))
        sent['rob_a'] += 1
        wait_diag(node, recorder, 'rob_a.images', sent['rob_a'], args.timeout)

    def send_b(t_s: float, data: bytes = jpeg) -> None:
        pub_b.publish(stamped(CompressedImage(format='jpeg', data=data), t_s, 'rob_b'))
        sent['rob_b'] += 1
        wait_diag(node, recorder, 'rob_b.images', sent['rob_b'], args.timeout)

    def good_set(t_s: float) -> None:
        nonlocal sets
        send_a(t_s)
        send_b(t_s)
        sets += 1
        spin_until(node, lambda: recorder.count('/da3/rig_depth') >= sets, args.timeout,
                   f'the rig_depth of the good set at {t_s} s')

    try:
        wait_matched(node, [pub_a, pub_b, info_a], recorder, args.timeout)
        good_set(1.0)
        send_a(1.1, encoding='16UC1', step=W * 2, data=rgb[..., :2].tobytes())  # encoding
        send_a(1.2, step=W * 3 - 1)                                     # step < width * 3
        send_a(1.3, data=rgb.tobytes() + b'\0' * 7)                     # size mismatch
        send_a(1.4, data=rgb.tobytes()[:-100])                          # truncated
        send_a(1.5, height=0, width=0, step=0, data=b'')                # zero-size
        info = CameraInfo(height=H, width=W, k=[float('nan'), 0.0, 32.0, 0.0, 50.0, 24.0,
                                                0.0, 0.0, 1.0])
        info_a.publish(stamped(info, 1.5, 'rob_a'))                     # NaN in CameraInfo
        wait_diag(node, recorder, 'rob_a.camera_info', 1, args.timeout)
        send_b(1.6, b'\xff\xd8\xff' + rng.bytes(500) + b'\xff\xd9')    # corrupt JPEG
        send_b(1.7, jpeg[: len(jpeg) // 2])                             # truncated JPEG
        send_a(2.0)
        send_a(2.0)                                                     # duplicated stamp
        send_a(1.9)                                                     # out of order
        send_b(2.0)
        sets += 1
        spin_until(node, lambda: recorder.count('/da3/rig_depth') >= sets, args.timeout,
                   'the set at 2.0 s')
        for t_s in (3.0, 3.2, 3.4, 3.6, 3.8):                          # rob_b stops...
            send_a(t_s)
        send_b(3.45)                                                    # ...and comes late
        send_b(3.6)
        sets += 1
        spin_until(node, lambda: recorder.count('/da3/rig_depth') >= sets, args.timeout,
                   'the set at 3.6 s')
        good_set(5.0)                                                   # still working
        wait_diag(node, recorder, 'sets_processed', sets, args.timeout)
        recorder.dump(args.out, [])
        return 0
    except TimeoutError as err:
        print(f'robust_publisher: {err}; diagnostics {recorder.diagnostics}', file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
