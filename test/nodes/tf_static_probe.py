"""Helper process of test_depth_node_rig_tf.py: gives the depth node one CameraInfo per
camera (with the given frame ids), waits until its /diagnostics count them, and only THEN
subscribes to /tf_static (tf2_ros's listener QoS: transient local, reliable), so it gets only
what the node latched. Writes JSON {messages: [[[parent, child, [x, y, z], [qx, qy, qz, qw]],
...] per message], publishers: [node names publishing /tf_static]} to --out.
Exit 0 on success, 1 with the reason on stderr otherwise.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import rclpy
from ros_io import Recorder, spin_until, wait_diag, wait_matched
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage

from da3_ros.ros import qos


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--cameras', required=True, help='JSON [[namespace, frame_id], ...]')
    parser.add_argument('--expect', choices=('message', 'nothing'), required=True)
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--timeout', type=float, default=90.0)
    args = parser.parse_args()
    cameras = json.loads(args.cameras)

    rclpy.init()
    node = rclpy.create_node('da3_test_tf_static_probe')
    try:
        pubs = [node.create_publisher(CameraInfo, f'{ns}/camera_info', qos.reliable(10))
                for ns, _ in cameras]
        recorder = Recorder(node, {})
        wait_matched(node, pubs, recorder, args.timeout)
        for pub, (_, frame) in zip(pubs, cameras, strict=True):
            info = CameraInfo(width=1600, height=900, distortion_model='plumb_bob',
                              d=[0.0] * 5, k=[1000.0, 0, 800, 0, 1000, 450, 0, 0, 1],
                              r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                              p=[1000.0, 0, 800, 0, 0, 1000, 450, 0, 0, 0, 1, 0])
            info.header.frame_id = frame
            pub.publish(info)
        for ns, _ in cameras:  # the node has handled every CameraInfo
            wait_diag(node, recorder, f'{ns.rsplit("/", 1)[-1]}.camera_info', 1, args.timeout)

        messages = []
        node.create_subscription(TFMessage, '/tf_static', messages.append,
                                 qos.TF_STATIC_LISTENER)
        if args.expect == 'message':
            spin_until(node, lambda: messages, args.timeout, 'the latched /tf_static message')
        end = time.monotonic() + (0.5 if args.expect == 'message' else 3.0)
        while time.monotonic() < end:  # anything more (or, expecting nothing, anything)
            rclpy.spin_once(node, timeout_sec=0.05)
        publishers = [i.node_name for i in node.get_publishers_info_by_topic('/tf_static')]
        out = [[[t.header.frame_id, t.child_frame_id,
                 [t.transform.translation.x, t.transform.translation.y,
                  t.transform.translation.z],
                 [t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
                  t.transform.rotation.w]] for t in m.transforms] for m in messages]
        args.out.write_text(json.dumps({'messages': out, 'publishers': publishers}))
        return 0
    except TimeoutError as err:
        print(f'tf_static_probe: {err}', file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
