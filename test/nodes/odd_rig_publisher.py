"""Helper process of test_depth_node_odd_rigs.py: an odd rig on two raw cameras, /or_a (rgb8,
48x64) and /or_b (mono16, 60x60: another size and aspect ratio); records /da3/rig_depth and the
last /diagnostics.

After each message it waits until the node's diagnostics count it, so the node sees the
messages in exactly this order. Stamps are seconds after T0; node settings: slop 0.01 s,
max_wait 0.5 s (see the test). Scenarios:
- relative: CameraInfo or_a plumb_bob with non-zero D, or_b equidistant (each sent twice);
  sets at 1.0 and 1.1; a 10x64 or_a image at 1.2 (too small for the network); a set at 1.3
- conditioned (pose_conditioning): or_a plumb_bob with non-zero D, or_b equidistant: the set
  at 1.0 is dropped (unsupported_distortion); or_b then sends a pinhole CameraInfo of the
  wrong size: 1.1 is dropped (info_size_mismatch); then the right one: the set at 1.2 comes
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
SIZES = {'or_a': (48, 64), 'or_b': (60, 60)}
K = {'or_a': [50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0],
     'or_b': [45.0, 0.0, 30.0, 0.0, 45.0, 30.0, 0.0, 0.0, 1.0]}
D_A = [-0.1, 0.01, 0.001, -0.002, 0.0]


def stamped(msg, t_s: float, frame: str):
    msg.header.frame_id = frame
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(T0_NS + round(t_s * 1e9), 10**9)
    return msg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--scenario', required=True, choices=('relative', 'conditioned'))
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--timeout', type=float, default=60.0)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    rgb_a = rng.integers(0, 256, (*SIZES['or_a'], 3), dtype=np.uint8)
    mono16_b = rng.integers(0, 65536, SIZES['or_b'], dtype=np.uint16)

    rclpy.init()
    node = rclpy.create_node('da3_test_odd_rig_publisher')
    recorder = Recorder(node, {'/da3/rig_depth': 'da3_ros/msg/RigDepth'})
    images = {cam: node.create_publisher(Image, f'/{cam}/image_raw', qos.reliable(10))
              for cam in SIZES}
    infos = {cam: node.create_publisher(CameraInfo, f'/{cam}/camera_info', qos.reliable(10))
             for cam in SIZES}
    sent = {'or_a': 0, 'or_b': 0}
    sent_info = {'or_a': 0, 'or_b': 0}
    sets = 0

    def send(cam: str, t_s: float, tiny: bool = False) -> None:
        if cam == 'or_a':
            pixels = rgb_a[:10] if tiny else rgb_a
            msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding='rgb8',
                        step=pixels.shape[1] * 3, data=pixels.tobytes())
        else:
            h, w = SIZES['or_b']
            msg = Image(height=h, width=w, encoding='mono16', step=w * 2,
                        data=mono16_b.astype('<u2').tobytes())
        images[cam].publish(stamped(msg, t_s, cam))
        sent[cam] += 1
        wait_diag(node, recorder, f'{cam}.images', sent[cam], args.timeout)

    def send_info(cam: str, model: str, d: list[float], size=None) -> None:
        h, w = size or SIZES[cam]
        info = CameraInfo(height=h, width=w, distortion_model=model, d=d, k=K[cam])
        infos[cam].publish(stamped(info, 0.5, cam))
        sent_info[cam] += 1
        wait_diag(node, recorder, f'{cam}.camera_info', sent_info[cam], args.timeout)

    def good_set(t_s: float) -> None:
        nonlocal sets
        send('or_a', t_s)
        send('or_b', t_s)
        sets += 1
        spin_until(node, lambda: recorder.count('/da3/rig_depth') >= sets, args.timeout,
                   f'the rig_depth of the set at {t_s} s')

    def dropped_set(t_s: float, key: str) -> None:
        send('or_a', t_s)
        send('or_b', t_s)
        wait_diag(node, recorder, key, 1, args.timeout)

    try:
        wait_matched(node, [*images.values(), *infos.values()], recorder, args.timeout)
        if args.scenario == 'relative':
            for _ in range(2):
                send_info('or_a', 'plumb_bob', D_A)
                send_info('or_b', 'equidistant', [0.0] * 4)
            good_set(1.0)
            good_set(1.1)
            send('or_a', 1.2, tiny=True)                     # 10x64: below one patch
            wait_diag(node, recorder, 'drops.or_a.image_too_small', 1, args.timeout)
            good_set(1.3)
        else:
            send_info('or_a', 'plumb_bob', D_A)
            send_info('or_b', 'equidistant', [0.01, 0.0, 0.0, 0.0])
            dropped_set(1.0, 'drops.or_b.unsupported_distortion')
            send_info('or_b', 'plumb_bob', [0.0] * 5, size=SIZES['or_a'])   # wrong size
            dropped_set(1.1, 'drops.or_b.info_size_mismatch')
            send_info('or_b', 'plumb_bob', [0.0] * 5)
            good_set(1.2)
        wait_diag(node, recorder, 'sets_processed', sets, args.timeout)
        recorder.dump(args.out, [])
        return 0
    except TimeoutError as err:
        print(f'odd_rig_publisher: {err}; diagnostics {recorder.diagnostics}', file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
