"""Helper process of test_depth_node_time.py: one stamp scenario on two raw rgb8 cameras,
/tj_a and /tj_b; records /da3/rig_depth, the last /diagnostics and each status's worst level.

After each message it waits until the node's diagnostics count that camera's arrival, so the
node sees the messages in exactly this order. Stamps are seconds after T0; node settings:
slop 0.01 s, max_wait 0.5 s (see the test). Scenarios:
- jump_ahead: sets at 1.0 .. 1.2 s; one tj_a frame stamped 1 h ahead; sets at 1.3 .. 1.5 s
- loop: sets at 10.0 .. 10.2 s, then both cameras start again at 0.0 s (a bag played with
  --loop): sets at 0.0 .. 0.2 s
- fast: tj_a at 30 Hz, tj_b at 10 Hz from 1.0 s, 4 sets; at a shared stamp tj_b's frame is
  sent first (tj_a's frame before it is then older than the pivot with no successor yet)
- uncalibrated: CameraInfo with K all zeros (as usb_cam publishes) on both cameras, 3 sets
Exit 0 on success, 1 with the reason on stderr otherwise.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import rclpy
from ros_io import Recorder, spin_until, wait_diag, wait_matched
from sensor_msgs.msg import CameraInfo, Image

from da3_ros.ros import qos

T0_NS = 1_700_000_000 * 10**9
H, W = 48, 64
HOUR_S = 3600.0


def stamped(msg, t_s: float, frame: str):
    msg.header.frame_id = frame
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(T0_NS + round(t_s * 1e9), 10**9)
    return msg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--scenario', required=True,
                        choices=('jump_ahead', 'loop', 'fast', 'uncalibrated'))
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--timeout', type=float, default=30.0)
    args = parser.parse_args()
    rgb = np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)

    rclpy.init()
    node = rclpy.create_node('da3_test_time_publisher')
    recorder = Recorder(node, {'/da3/rig_depth': 'da3_ros/msg/RigDepth'})
    images = {cam: node.create_publisher(Image, f'/{cam}/image_raw', qos.reliable(10))
              for cam in ('tj_a', 'tj_b')}
    infos = {cam: node.create_publisher(CameraInfo, f'/{cam}/camera_info', qos.reliable(10))
             for cam in ('tj_a', 'tj_b')}
    sent = {'tj_a': 0, 'tj_b': 0}
    sets = 0

    def send(cam: str, t_s: float) -> None:
        msg = Image(height=H, width=W, encoding='rgb8', step=W * 3, data=rgb.tobytes())
        images[cam].publish(stamped(msg, t_s, cam))
        sent[cam] += 1
        wait_diag(node, recorder, f'{cam}.images', sent[cam], args.timeout)

    def expect_set(t_s: float) -> None:
        nonlocal sets
        sets += 1
        spin_until(node, lambda: recorder.count('/da3/rig_depth') >= sets, args.timeout,
                   f'the rig_depth of the set at {t_s} s')

    def good_set(t_s: float) -> None:
        send('tj_a', t_s)
        send('tj_b', t_s)
        expect_set(t_s)

    try:
        wait_matched(node, [*images.values(), *infos.values()], recorder, args.timeout)
        if args.scenario == 'jump_ahead':
            for t_s in (1.0, 1.1, 1.2):
                good_set(t_s)
            send('tj_a', 1.3 + HOUR_S)                          # one bad stamp, 1 h ahead
            for t_s in (1.3, 1.4, 1.5):
                good_set(t_s)
        elif args.scenario == 'loop':
            for t_s in (10.0, 10.1, 10.2, 0.0, 0.1, 0.2):       # the bag starts again
                good_set(t_s)
        elif args.scenario == 'fast':
            for k in range(10):                                 # tj_a 1.0, 1.033, ... 1.3 s
                t_s = 1.0 + k / 30
                if k % 3 == 0:
                    send('tj_b', t_s)
                send('tj_a', t_s)
                if k % 3 == 0:
                    expect_set(t_s)
        else:
            for cam, pub in infos.items():
                pub.publish(stamped(CameraInfo(height=H, width=W, k=[0.0] * 9), 1.0, cam))
                wait_diag(node, recorder, f'{cam}.camera_info', 1, args.timeout)
            for t_s in (1.0, 1.1, 1.2):
                good_set(t_s)
        wait_diag(node, recorder, 'sets_processed', sets, args.timeout)
        recorder.dump(args.out, [])
        return 0
    except TimeoutError as err:
        print(f'time_publisher: {err}; diagnostics {recorder.diagnostics}', file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
