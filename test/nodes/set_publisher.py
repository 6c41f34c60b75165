"""Helper process of test_node_stop.py: publishes --frames sets (one raw rgb8 image per camera
per set, 0.1 s apart) to a node and exits 0 once the node's /diagnostics hold every --wait
KEY=VALUE at once (e.g. the depth node's sets_synced=1 sets_processed=0: the set is in flight);
1 with the reason on stderr otherwise.
"""
import argparse
import sys

import numpy as np
import rclpy
from ros_io import Recorder, spin_until, wait_matched
from sensor_msgs.msg import Image

from da3_ros.ros import qos

H, W = 48, 64


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--cameras', nargs='+', required=True)
    parser.add_argument('--frames', type=int, default=1)
    parser.add_argument('--wait', nargs='+', required=True, help='KEY=VALUE ...')
    parser.add_argument('--timeout', type=float, default=60.0)
    args = parser.parse_args()
    rgb = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    rclpy.init()
    node = rclpy.create_node('da3_test_set_publisher')
    recorder = Recorder(node, {})
    pubs = {cam: node.create_publisher(Image, f'/{cam}/image_raw', qos.reliable(10))
            for cam in args.cameras}
    try:
        wait_matched(node, list(pubs.values()), recorder, args.timeout)
        spin_until(node, lambda: recorder.diagnostics, args.timeout, 'the first diagnostics')
        for k in range(args.frames):
            for cam, pub in pubs.items():
                msg = Image(height=H, width=W, encoding='rgb8', step=W * 3,
                            data=rgb.tobytes())
                msg.header.frame_id = cam
                msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, k * 10**8
                pub.publish(msg)
        wanted = dict(kv.split('=', 1) for kv in args.wait)
        spin_until(node, lambda: all(recorder.diagnostics.get(key) == value
                                     for key, value in wanted.items()), args.timeout,
                   f'diagnostics {wanted}')
        return 0
    except TimeoutError as err:
        print(f'set_publisher: {err}; diagnostics {recorder.diagnostics}', file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
