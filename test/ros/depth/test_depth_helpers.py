"""The depth node's helpers in ros/depth/, without a node: the newest-set worker, frame
selection and TF readiness, per-camera input checks, and the publisher sets."""
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from da3_ros.errors import PointsError
from da3_ros.ros.depth.drops import DropLog
from da3_ros.ros.depth.frames import readiness, select_frames, tf_lookup
from da3_ros.ros.depth.inputs import CameraChecks
from da3_ros.ros.depth.outputs import CameraInput
from da3_ros.ros.depth.params import parse_depth_config
from da3_ros.ros.depth.publishers import RIG_ORDER, DepthPublishers
from da3_ros.ros.depth.worker import NewestSetWorker
from da3_ros.ros.diagnostics import CauseThrottle, DepthDiagnostics
from da3_ros.ros.errors import MessageError
from da3_ros.ros.tf_buffer import TfBuffer, matrix_to_transform

CAMS = {'cameras': ['/front', '/rear']}


class Logger:
    def __init__(self):
        self.lines = []

    def warning(self, text):
        self.lines.append(text)

    info = error = warning


def drop_log():
    return DropLog(DepthDiagnostics(['front', 'rear']), CauseThrottle(0.0), Logger())


def test_worker_keeps_only_the_newest_waiting_set():
    started, release, done = threading.Event(), threading.Event(), []

    def process(item, submitted_at):
        started.set()
        release.wait(5)
        done.append(item)

    worker = NewestSetWorker(process, on_error=pytest.fail)
    assert worker.submit('a') is False
    assert started.wait(5)               # 'a' is in process, nothing waits
    assert worker.submit('b') is False
    assert worker.submit('c') is True    # 'b' is overtaken while it waits
    release.set()
    for _ in range(500):
        if len(done) == 2:
            break
        threading.Event().wait(0.01)
    worker.request_stop()
    worker.join(5)
    assert done == ['a', 'c']


def test_worker_survives_a_failing_set_and_stops_without_the_waiting_one():
    errors, done, gate = [], [], threading.Event()

    def process(item, submitted_at):
        if item == 'bad':
            raise ValueError('broken set')
        gate.wait(5)
        done.append(item)

    worker = NewestSetWorker(process, on_error=errors.append)
    worker.submit('bad')
    for _ in range(500):
        if errors:
            break
        threading.Event().wait(0.01)
    assert [str(e) for e in errors] == ['broken set']
    worker.submit('slow')
    threading.Event().wait(0.05)
    worker.submit('never')               # waits behind 'slow'; stopping drops it
    worker.request_stop()
    gate.set()
    worker.join(5)
    assert done == ['slow'] and worker.stopping


def test_drop_log_counts_message_errors_by_cause_and_source():
    drops = drop_log()
    drops.set_failed(MessageError('no_camera_info', 'rear has none', source='rear'))
    drops.set_failed(RuntimeError('boom'))
    drops.set_failed(PointsError('bad_transform', 'NaN in T_fixed_cam'))
    counts = drops.diag.drops_by_source
    assert counts[('rear', 'no_camera_info')] == 1 and counts[('rig', 'processing_error')] == 1
    assert counts[('rig', 'bad_transform')] == 1


def inputs(frame='front_optical'):
    header = Header(frame_id=frame)
    return [CameraInput('front', header, np.zeros((28, 28, 3), np.uint8))]


def test_frame_selection_defaults_and_lookups():
    cfg = SimpleNamespace(rig_base_frame='base_link', fixed_frame='', pose_parent_frame='',
                          nav_base_frame='base_footprint', publish=frozenset({'depth'}))
    asked = []

    def lookup(frame, world, stamp_ns):
        asked.append((frame, world, stamp_ns))
        return np.eye(4)

    frames = select_frames(cfg, inputs(), rig_given=False, stamp_ns=5, lookup=lookup)
    assert (frames.fixed_frame, frames.pose_parent_frame) == ('front_optical',) * 2
    assert frames.poses_estimated and frames.T_nav_world is None
    assert asked == [('front_optical', 'front_optical', 5)] * 2
    cfg.fixed_frame, cfg.publish = 'odom', frozenset({'scan'})
    frames = select_frames(cfg, inputs(), rig_given=True, stamp_ns=5, lookup=lookup)
    assert (frames.fixed_frame, frames.pose_parent_frame) == ('odom', 'odom')
    assert not frames.poses_estimated and frames.T_nav_world is not None
    assert asked[-1] == ('base_footprint', 'base_link', 5)


def transform(parent, child, x):
    T = np.eye(4)
    T[0, 3] = x
    msg = TransformStamped(transform=matrix_to_transform(T))
    msg.header.frame_id, msg.child_frame_id = parent, child
    return msg


def test_tf_lookup_identity_transform_and_counted_failure():
    buffer, failures = TfBuffer(), []
    buffer.add_transform(transform('base_link', 'cam', 2.0), static=True)
    lookup = tf_lookup(buffer, 0, lambda cause, text: failures.append(cause))
    assert np.array_equal(lookup('x', 'x', 0), np.eye(4))
    assert lookup('cam', 'base_link', 0)[0, 3] == pytest.approx(-2.0)
    assert lookup('nowhere', 'base_link', 0) is None
    assert failures == ['tf_unknown_frame']


def test_readiness_waits_for_camera_info_and_rig_frames():
    buffer = TfBuffer()
    cfg = SimpleNamespace(rig_source='tf', rig_base_frame='base_link', cameras=[1, 2])
    buffer.add_transform(transform('base_link', 'cam_a', 1.0), static=True)
    assert readiness(cfg, True, buffer) == {'camera_info.ready': 'true', 'rig_tf.frames': '1',
                                            'ready': 'false'}
    buffer.add_transform(transform('base_link', 'cam_b', 1.0), static=True)
    assert readiness(cfg, True, buffer)['ready'] == 'true'
    assert readiness(cfg, False, buffer)['ready'] == 'false'
    cfg.rig_source = 'none'
    assert readiness(cfg, True, buffer) == {'camera_info.ready': 'true', 'ready': 'true'}


def image(h, w, frame='cam'):
    msg = Image(height=h, width=w, encoding='rgb8', step=w * 3, data=bytes(h * w * 3))
    msg.header.frame_id = frame
    return msg


def test_camera_checks_size_frame_and_camera_info():
    cfg = parse_depth_config({**CAMS, 'metric_mode': 'metric_model'})
    checks = CameraChecks(cfg, None, drop_log())
    assert checks.convert(cfg.cameras[0], image(28, 42)).shape == (28, 42, 3)
    with pytest.raises(MessageError, match='image_too_small'):
        checks.convert(cfg.cameras[0], image(10, 42))
    with pytest.raises(MessageError, match='no_frame_id'):
        checks.convert(cfg.cameras[0], image(28, 42, frame=''))
    assert not checks.ready()
    with pytest.raises(MessageError, match='no_camera_info') as err:
        checks.intrinsics(inputs())
    assert err.value.source == 'front'


def test_mixed_sizes_are_warned_once_per_combination():
    cfg = parse_depth_config(CAMS)
    drops = drop_log()
    checks = CameraChecks(cfg, None, drops)
    cams = [CameraInput('front', Header(), np.zeros((28, 42, 3), np.uint8)),
            CameraInput('rear', Header(), np.zeros((42, 28, 3), np.uint8))]
    checks.warn_mixed_sizes(cams, on_device=True)
    checks.warn_mixed_sizes(cams, on_device=True)
    checks.warn_mixed_sizes(cams[:1] * 2, on_device=True)
    assert len(drops.logger.lines) <= 1
    assert all('host path' in line for line in drops.logger.lines)


class FakePublisher:
    def __init__(self, sent, topic):
        self.sent, self.topic = sent, topic

    def publish(self, msg):
        self.sent.append((self.topic, msg))


class FakeNode:
    def __init__(self):
        self.sent, self.topics = [], []

    def create_publisher(self, kind, topic, qos):
        self.topics.append(topic)
        return FakePublisher(self.sent, topic)


def test_publishers_switch_on_live_and_respect_the_publish_set():
    cfg = parse_depth_config({**CAMS, 'publish.tf': False})
    node = FakeNode()
    pubs = DepthPublishers(node, cfg, qos=None)
    first = list(node.topics)
    assert '/front/da3/depth' in first and 'da3/scan' not in first
    pubs.add(cfg.publish | {'scan'})
    pubs.add(cfg.publish | {'scan'})           # no second publisher for the same output
    assert node.topics[len(first):] == ['da3/scan']
    cams = [SimpleNamespace(depth=f'depth {i}', confidence=None, camera_info=None, cloud=None,
                            colorized_depth=None) for i in range(2)]
    out = SimpleNamespace(cameras=cams, fused_cloud='fused', transforms=[], rig_depth='rig',
                          obstacles=None, scan='scan')
    pubs.publish(out, frozenset({'depth', 'scan', 'rig_depth'}))
    assert node.sent == [('/front/da3/depth', 'depth 0'), ('/rear/da3/depth', 'depth 1'),
                         ('da3/rig_depth', 'rig'), ('da3/scan', 'scan')]
    assert RIG_ORDER[:2] == ('fused_cloud', 'tf')
