"""Helper process of test_node_parameters.py: `ros2 param set` on a running node, through its
~/set_parameters service (rcl_interfaces/srv/SetParameters, what `ros2 param set` calls), and
what the node then publishes. Writes --out (JSON) and exits 0; 1 with the reason on stderr.

--node da3_depth: one camera (--camera), one raw image per set. Sets a read-only parameter, an
out-of-range and a cross-check-violating live value, then cloud.stride and publish.* between
sets; records each set's cloud width and depth size and which outputs arrived.
--node da3_slam (the simulated slam node, chunk.size 2): a read-only set, a bad live value,
then publish.tf_period_s from 0 to 0.05 after the first chunk; counts /tf messages before and
after.
"""
import argparse
import json
import sys
import time

import numpy as np
import rclpy
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from ros_io import Recorder, spin_until, wait_diag, wait_matched
from sensor_msgs.msg import Image, PointCloud2
from tf2_msgs.msg import TFMessage

from da3_ros.ros import qos

H, W = 48, 64


class Client:
    def __init__(self, node, target: str, timeout_s: float):
        self.node, self.timeout_s = node, timeout_s
        self.client = node.create_client(SetParameters, f'/{target}/set_parameters')
        spin_until(node, self.client.service_is_ready, timeout_s, f'/{target}/set_parameters')

    def set(self, **values) -> list[dict]:
        """One SetParameters call (names with '.' given as '__'); each result as a dict."""
        request = SetParameters.Request(parameters=[
            Parameter(name.replace('__', '.'), value=value).to_parameter_msg()
            for name, value in values.items()])
        future = self.client.call_async(request)
        spin_until(self.node, future.done, self.timeout_s, f'set_parameters {values}')
        return [{'successful': r.successful, 'reason': r.reason}
                for r in future.result().results]


def image(stamp_ns: int, frame: str, rgb: np.ndarray) -> Image:
    msg = Image(height=H, width=W, encoding='rgb8', step=W * 3, data=rgb.tobytes())
    msg.header.frame_id = frame
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    return msg


def depth_node(node, camera: str, timeout_s: float) -> dict:
    depth_t, cloud_t = f'/{camera}/da3/depth', f'/{camera}/da3/points'
    recorder = Recorder(node, {depth_t: 'sensor_msgs/msg/Image',
                               cloud_t: 'sensor_msgs/msg/PointCloud2'})
    colorized: list = []   # off at start: its publisher appears when switched on
    colorized_sub = node.create_subscription(Image, f'/{camera}/da3/depth_colorized',
                                             colorized.append, qos.reliable(10))
    pub = node.create_publisher(Image, f'/{camera}/image_raw', qos.reliable(10))
    wait_matched(node, [pub], recorder, timeout_s)
    spin_until(node, lambda: recorder.diagnostics, timeout_s, 'the first diagnostics')
    client = Client(node, 'da3_depth', timeout_s)
    rgb = np.random.default_rng(5).integers(0, 256, (H, W, 3), dtype=np.uint8)
    result, sets = {}, []

    def send_set(k: int, colorized_expected: int = 0) -> None:
        pub.publish(image(1_700_000_000 * 10**9 + k * 10**8, camera, rgb))
        wait_diag(node, recorder, 'sets_processed', k + 1, timeout_s)
        spin_until(node, lambda: recorder.count(cloud_t) == k + 1, timeout_s, f'cloud {k}')
        spin_until(node, lambda: len(colorized) >= colorized_expected, timeout_s,
                   f'colorized depth of set {k}')
        end = time.monotonic() + 0.5      # anything else of this set arrives too: spin (one
        while time.monotonic() < end:     # spin_once runs one callback, so keep spinning)
            rclpy.spin_once(node, timeout_sec=0.05)
        cloud = deserialize_message(recorder.raw[cloud_t][-1], PointCloud2)
        depth = (deserialize_message(recorder.raw[depth_t][-1], Image)
                 if recorder.raw[depth_t] else None)
        sets.append({'cloud_width': cloud.width, 'depths': recorder.count(depth_t),
                     'depth_hw': [depth.height, depth.width] if depth else None,
                     'colorized': len(colorized)})

    result['read_only'] = client.set(process_res=280)
    result['out_of_range'] = client.set(sync__slop_s=20.0)
    result['cross_check'] = client.set(sync__max_wait_s=0.01)   # below sync.slop_s 0.05
    send_set(0)
    result['stride'] = client.set(cloud__stride=4)
    send_set(1)
    result['toggle'] = client.set(publish__depth=False, publish__colorized_depth=True)
    spin_until(node, lambda: colorized_sub.get_publisher_count() > 0, timeout_s,
               'the depth_colorized publisher')
    # seeing the new publisher in the graph is not its writer having matched our reader: a
    # message sent before that is lost (volatile), so give discovery time to finish
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    send_set(2, colorized_expected=1)
    result['sets'] = sets
    return result


def slam_node(node, camera: str, timeout_s: float) -> dict:
    tf: list = []
    tf_sub = node.create_subscription(TFMessage, '/tf', tf.append, qos.reliable(100))
    recorder = Recorder(node, {})
    pub = node.create_publisher(Image, f'/{camera}/image_raw', qos.reliable(10))
    wait_matched(node, [pub], recorder, timeout_s)
    spin_until(node, lambda: tf_sub.get_publisher_count() > 0, timeout_s, 'the /tf publisher')
    client = Client(node, 'da3_slam', timeout_s)
    result = {'read_only': client.set(chunk__size=10),
              'test_param_read_only': client.set(test__simulated_seed=7),
              'cross_check': client.set(sync__max_wait_s=0.01)}
    rgb = np.zeros((H, W, 3), np.uint8)
    for k in range(2):                       # one chunk of 2 frames -> one map TF
        pub.publish(image(1_700_000_000 * 10**9 + k * 10**8, camera, rgb))
    spin_until(node, lambda: tf, timeout_s, 'the chunk TF')

    def count_for(seconds: float) -> int:
        start, end = len(tf), time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
        return len(tf) - start

    result['tf_before'] = count_for(1.0)
    result['tf_period'] = client.set(publish__tf_period_s=0.05)
    result['tf_after'] = count_for(1.0)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--node', choices=('da3_depth', 'da3_slam'), required=True)
    parser.add_argument('--camera', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--timeout', type=float, default=90.0)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node('da3_test_param_client')
    try:
        run = depth_node if args.node == 'da3_depth' else slam_node
        result = run(node, args.camera, args.timeout)
        with open(args.out, 'w') as out:
            json.dump(result, out)
        return 0
    except TimeoutError as err:
        print(f'param_client: {err}', file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
