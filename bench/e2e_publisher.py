"""Camera-rig publisher of the end-to-end harness (bench/gpu_node_e2e.py): a separate process
that plays the nuScenes 6-camera sample as a live rig would, at fixed rates.

    python bench/e2e_publisher.py --data <nuscenes_mini_6cam_sample> --transport raw \
        --segments 10:60 20:60 30:60 --out published.json

Per set: each camera's image (rgb8 Image of the decoded JPEG, or the JPEG itself as a
CompressedImage) and CameraInfo, all stamped with the wall clock at the moment the set is
sent, on /<CAM>/image_raw[/compressed] and /<CAM>/camera_info with sensor-data QoS (best
effort), as camera drivers publish. Messages are built once; a set only restamps them.

Sequence: wait for the node (its /diagnostics say 'camera_info.ready' after the first
CameraInfo), then warm-up sets one at a time until the node reports --warmup-sets processed
(the first compiles the network; --warmup-sets 0, for the SLAM node, skips both waits),
then one segment per RATE:SECONDS, each followed by
--gap-s of silence so the last sets drain. Writes the schedule (see bench/e2e_metrics.py).
Exit 0 when done, 1 with the reason on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from da3_ros.ros import qos


def rig_messages(data: Path, transport: str) -> list[tuple[str, object, str, CameraInfo]]:
    """[(camera, image message, image topic, CameraInfo)] in calibration.json's order."""
    calibration = json.loads((data / 'calibration.json').read_text())
    out = []
    for name, cam in calibration['cameras'].items():
        jpeg = (data / cam['file']).read_bytes()
        if transport == 'compressed':
            image = CompressedImage(format='jpeg', data=jpeg)
            topic = f'/{name}/image_raw/compressed'
        else:
            rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
                               cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            image = Image(height=h, width=w, encoding='rgb8', step=3 * w, data=rgb.tobytes())
            topic = f'/{name}/image_raw'
        K = np.asarray(cam['cam2img'], np.float64)
        info = CameraInfo(width=1600, height=900, distortion_model='plumb_bob', d=[0.0] * 5,
                          k=K.ravel().tolist(), r=np.eye(3).ravel().tolist(),
                          p=np.hstack([K, np.zeros((3, 1))]).ravel().tolist())
        image.header.frame_id = info.header.frame_id = name
        out.append((name, image, topic, info))
    return out


class RigPublisher:
    def __init__(self, node, rig: list):
        self.node, self.rig = node, rig
        self.images = [node.create_publisher(type(img), topic, qos.SENSOR_DATA)
                       for _, img, topic, _ in rig]
        self.infos = [node.create_publisher(CameraInfo, f'/{name}/camera_info', qos.SENSOR_DATA)
                      for name, *_ in rig]
        self.diag: dict[str, str] = {}
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag,
                                 qos.reliable(10))

    def _on_diag(self, msg) -> None:
        values = {kv.key: kv.value for s in msg.status for kv in s.values}
        if 'sets_processed' in values or 'camera_info.ready' in values:
            self.diag.update(values)

    def send(self, with_images: bool = True) -> int:
        """Publish one set (CameraInfo, then the images) stamped now; returns the stamp."""
        stamp_ns = time.time_ns()
        sec, nanosec = divmod(stamp_ns, 10**9)
        for (_, image, _, info), image_pub, info_pub in zip(self.rig, self.images, self.infos,
                                                            strict=True):
            for msg in (info, image):
                msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
            info_pub.publish(info)
            if with_images:
                image_pub.publish(image)
        return stamp_ns

    def spin_until(self, done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f'no {what} within {timeout_s} s (diagnostics {self.diag})')
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def processed(self) -> int:
        return int(self.diag.get('sets_processed', 0))


def run_segment(pub: RigPublisher, rate_hz: float, seconds: float, gap_s: float) -> dict:
    """Sets at rate_hz for `seconds` (a set falling more than one period behind is 'late'),
    then gap_s of spinning; the segment's record."""
    period_s, stamps, late = 1.0 / rate_hz, [], 0
    start_ns, t0 = time.time_ns(), time.monotonic()
    n = int(round(seconds * rate_hz))
    for k in range(n):
        wait = t0 + k * period_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -period_s:
            late += 1
        stamps.append(pub.send())
    end_ns = time.time_ns()
    settle_until = time.monotonic() + gap_s
    while time.monotonic() < settle_until:
        rclpy.spin_once(pub.node, timeout_sec=0.05)
    return {'rate_hz': rate_hz, 'start_ns': start_ns, 'end_ns': end_ns,
            'settle_ns': int(gap_s * 1e9), 'stamps': stamps, 'late': late}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=Path, required=True, help='nuscenes_mini_6cam_sample')
    parser.add_argument('--transport', choices=('raw', 'compressed'), default='raw')
    parser.add_argument('--segments', nargs='+', default=['10:60', '20:60', '30:60'],
                        help='RATE_HZ:SECONDS, played in order')
    parser.add_argument('--warmup-sets', type=int, default=3)
    parser.add_argument('--gap-s', type=float, default=3.0)
    parser.add_argument('--timeout-s', type=float, default=600.0,
                        help='longest wait for the node (start, first-set compilation)')
    parser.add_argument('--out', type=Path, required=True)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node('da3_e2e_publisher')
    try:
        pub = RigPublisher(node, rig_messages(args.data, args.transport))
        pub.spin_until(lambda: all(p.get_subscription_count() for p in pub.images),
                       args.timeout_s, 'node subscribed to every camera')
        ready_deadline = time.monotonic() + args.timeout_s
        while (pub.diag.get('camera_info.ready') != 'true'     # infos until the node has them
               and args.warmup_sets > 0):
            pub.send(with_images=False)
            if time.monotonic() > ready_deadline:
                raise TimeoutError(f'node not ready (diagnostics {pub.diag})')
            rclpy.spin_once(node, timeout_sec=0.2)
        warmup = []
        for _ in range(args.warmup_sets):    # one at a time: each is processed before the next
            before = pub.processed()
            warmup.append(pub.send())
            pub.spin_until(lambda before=before: pub.processed() > before, args.timeout_s,
                           'warm-up set processed')
        quiet_until = time.monotonic() + args.gap_s   # the node's counters settle first
        while time.monotonic() < quiet_until:
            rclpy.spin_once(node, timeout_sec=0.05)
        segments = []
        for spec in args.segments:
            rate, seconds = (float(v) for v in spec.split(':'))
            segments.append(run_segment(pub, rate, seconds, args.gap_s))
            print(f'publisher: {rate:g} Hz for {seconds:g} s: {len(segments[-1]["stamps"])} '
                  f'sets, {segments[-1]["late"]} late', flush=True)
        args.out.write_text(json.dumps({'transport': args.transport, 'warmup': warmup,
                                        'segments': segments}))
        return 0
    except TimeoutError as err:
        print(f'publisher: {err}', file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
