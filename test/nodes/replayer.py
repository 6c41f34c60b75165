"""Helper process of test_depth_node_replay.py: replays real multi-camera data into the depth
node and records every output topic as raw CDR.

Sources (../shared/data):
- nuscenes: the 6 JPEGs as CompressedImage ('jpeg') on /<CAM>/image_raw/compressed, stamps from
  the file names (within 43 ms), CameraInfo from cam2img; one set.
- dgp: the 6-camera MCAP bag (CompressedImage + CameraInfo + /tf_static + /tf), message bytes
  unchanged from the bag.
- euroc: the sqlite3 bag, mono8 /cam0 and /cam1 Image + CameraInfo + /tf_static.
Lock-step: publish /tf_static, /tf and CameraInfo, wait for the node's diagnostics 'ready',
then per set the images, and wait until every output topic has one more message before the
next set (so no set is dropped as 'busy'). Writes <out>/manifest.json (see ros_io.Recorder).
Exit 0 on success, 1 with the reason on stderr otherwise.
"""
import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import rclpy
from rclpy.serialization import deserialize_message
from ros_io import Recorder, spin_until, wait_diag, wait_diag_value, wait_matched
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from da3_ros.ros import qos

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # test/: shared_data
from shared_data import DATA  # noqa: E402

NUSCENES = DATA / 'nuscenes_mini_6cam_sample'
BAGS = DATA / 'rosbag2_samples'


def nuscenes_sets() -> tuple[list, list, list]:
    """([set: [(topic, msg)]], tf_static msgs, tf msgs) for the nuScenes keyframe."""
    calibration = json.loads((NUSCENES / 'calibration.json').read_text())
    items = []
    for name, cam in calibration['cameras'].items():
        stamp_us = int(Path(cam['file']).stem.split('__')[-1])
        image = CompressedImage(format='jpeg', data=(NUSCENES / cam['file']).read_bytes())
        info = CameraInfo(width=1600, height=900, distortion_model='plumb_bob',
                          d=[0.0] * 5, k=np.ravel(cam['cam2img']).tolist(),
                          r=np.eye(3).ravel().tolist(),
                          p=np.hstack([cam['cam2img'], np.zeros((3, 1))]).ravel().tolist())
        for msg in (image, info):
            msg.header.frame_id = name
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_us * 1000, 10**9)
        items += [(f'/{name}/camera_info', info), (f'/{name}/image_raw/compressed', image)]
    return [items], [], []


def bag_sets(folder: Path, image_suffix: str, max_sets: int) -> tuple[list, list, list]:
    """Group a bag's images and infos by stamp into sets; TF messages kept apart."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    classes = {'sensor_msgs/msg/CompressedImage': CompressedImage,
               'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CameraInfo': CameraInfo,
               'tf2_msgs/msg/TFMessage': TFMessage}
    by_stamp, tf_static, tf = defaultdict(list), [], []
    with AnyReader([folder], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for conn, _, raw in reader.messages():
            if conn.msgtype not in classes:
                continue
            msg = deserialize_message(bytes(raw), classes[conn.msgtype])  # bag bytes as-is
            if conn.topic == '/tf_static':
                tf_static.append(msg)
            elif conn.topic == '/tf':
                tf.append(msg)
            elif conn.topic.endswith(image_suffix) or conn.topic.endswith('camera_info'):
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                by_stamp[stamp].append((conn.topic, msg))
    sets = []
    for stamp in sorted(by_stamp)[:max_sets]:  # infos first within a set, then images
        sets.append(sorted(by_stamp[stamp], key=lambda item: 'camera_info' not in item[0]))
    return sets, tf_static, tf


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--source', choices=('nuscenes', 'dgp', 'euroc'), required=True)
    parser.add_argument('--sets', type=int, default=3)
    parser.add_argument('--outputs', required=True, help='JSON {topic: type}, one msg per set')
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--timeout', type=float, default=90.0)
    parser.add_argument('--publish-tf', action='store_true', help="also replay the bag's /tf")
    args = parser.parse_args()
    if args.source == 'nuscenes':
        sets, tf_static, tf = nuscenes_sets()
    elif args.source == 'dgp':
        sets, tf_static, tf = bag_sets(BAGS / 'dgp_multicam_6cam_mcap', 'compressed', args.sets)
    else:
        sets, tf_static, tf = bag_sets(BAGS / 'euroc_v1_01_stereo_imu_sqlite3', 'image_raw',
                                       args.sets)
    outputs = json.loads(args.outputs)
    tf = tf if args.publish_tf else []

    rclpy.init()
    node = rclpy.create_node('da3_test_replayer')
    try:
        pubs = {topic: node.create_publisher(type(msg), topic, qos.reliable(10))
                for topic, msg in sets[0]}
        static_pub = node.create_publisher(TFMessage, '/tf_static', qos.TF_STATIC_BROADCASTER)
        tf_pub = node.create_publisher(TFMessage, '/tf', qos.TF)
        recorder = Recorder(node, outputs)
        wait_matched(node, list(pubs.values()) + [static_pub] * bool(tf_static) +
                     [tf_pub] * bool(tf), recorder, args.timeout)
        if tf_static:
            static_pub.publish(TFMessage(transforms=[t for m in tf_static for t in m.transforms]))
        for msg in tf:
            tf_pub.publish(msg)
        for topic, msg in sets[0]:
            if 'camera_info' in topic:
                pubs[topic].publish(msg)
        wait_diag_value(node, recorder, 'ready', 'true', args.timeout)
        published = []
        for k, items in enumerate(sets):
            for topic, msg in items:
                pubs[topic].publish(msg)
                published.append([topic, msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec,
                                  msg.header.frame_id])
            spin_until(node, lambda k=k: all(recorder.count(t) > k for t in outputs),
                       args.timeout, f'the outputs of set {k}')
        wait_diag(node, recorder, 'sets_processed', len(sets), args.timeout)
        recorder.dump(args.out, published)
        return 0
    except TimeoutError as err:
        print(f'replayer: {err}; counts ' + str({t: recorder.count(t) for t in outputs}),
              file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
