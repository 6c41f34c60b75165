"""da3_ros/ros/depth/rig_tf.py: a calibration-file rig as /tf_static transforms, checked against
the numbers of config/nuscenes_6cam_calibration.yaml (read here as plain YAML, quaternions from
transforms3d), and the publisher's QoS and when it publishes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
from transforms3d.quaternions import mat2quat

from da3_ros.errors import ConfigError
from da3_ros.ros.depth.rig_calibration import load_rig_calibration
from da3_ros.ros.depth.rig_tf import RigStaticTf, check_base_frame, rig_static_transforms

CALIBRATION = Path(__file__).resolve().parents[3] / 'config' / 'nuscenes_6cam_calibration.yaml'


def xyzw(t) -> np.ndarray:
    q = t.transform.rotation
    return np.array([q.x, q.y, q.z, q.w])


def same_rotation(q1, q2, atol: float) -> bool:
    return np.allclose(q1, q2, atol=atol) or np.allclose(q1, -np.asarray(q2), atol=atol)


def test_nuscenes_rig_transforms_are_the_file():
    raw = yaml.safe_load(CALIBRATION.read_text())['cameras']
    frames = [(name, f'{name}_optical') for name in raw]
    msgs = rig_static_transforms(load_rig_calibration(CALIBRATION), 'base_link', frames,
                                 stamp_ns=1_500_000_001)
    assert [(m.header.frame_id, m.child_frame_id) for m in msgs] == [
        ('base_link', f'{name}_optical') for name in raw]
    for m, name in zip(msgs, raw, strict=True):
        T = np.array(raw[name]['T_base_camera'])
        t = m.transform.translation
        np.testing.assert_array_equal([t.x, t.y, t.z], T[:3, 3])  # metres, unchanged
        w, x, y, z = mat2quat(T[:3, :3])
        assert same_rotation(xyzw(m), [x, y, z, w], 1e-12), name
        assert abs(np.linalg.norm(xyzw(m)) - 1) < 1e-12
        assert (m.header.stamp.sec, m.header.stamp.nanosec) == (1, 500_000_001)
    # closed form: CAM_FRONT looks along base x with image x right (-y), image y down (-z),
    # i.e. R ~ [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]: quaternion (x, y, z, w) = (-.5, .5, -.5, .5)
    front = msgs[list(raw).index('CAM_FRONT')]
    assert same_rotation(xyzw(front), [-0.5, 0.5, -0.5, 0.5], 5e-3)
    t = front.transform.translation
    assert (t.x, t.y, t.z) == (1.7007912397384644, 0.01594563201069832, 1.5109575986862183)


def test_quaternion_form_and_errors(tmp_path):
    path = tmp_path / 'rig.yaml'
    half = float(np.sqrt(0.5))
    path.write_text(yaml.safe_dump({'base_frame': 'base', 'cameras': {
        'a': {'translation': [1.0, 2.0, 3.0], 'rotation_xyzw': [0.0, 0.0, half, half]}}}))
    calibration = load_rig_calibration(path)
    [m] = rig_static_transforms(calibration, 'base', [('a', 'a_frame')])
    assert same_rotation(xyzw(m), [0.0, 0.0, half, half], 1e-12)
    t = m.transform.translation
    assert (t.x, t.y, t.z) == (1.0, 2.0, 3.0)
    with pytest.raises(ConfigError, match='no camera'):
        rig_static_transforms(calibration, 'base', [('b', 'b')])
    check_base_frame(calibration, 'base')
    with pytest.raises(ConfigError, match="rig.base_frame is 'base_link'"):
        check_base_frame(calibration, 'base_link')


class _Publisher:
    def __init__(self, qos):
        self.qos, self.sent = qos, []

    def publish(self, msg):
        self.sent.append(msg)


class _Node:
    def __init__(self):
        self.publishers = {}

    def create_publisher(self, kind, topic, qos):
        self.publishers[topic] = _Publisher(qos)
        return self.publishers[topic]


def test_publishes_once_every_frame_is_known_with_static_broadcaster_qos():
    node = _Node()
    names = ['CAM_FRONT', 'CAM_BACK']
    rig = RigStaticTf(node, load_rig_calibration(CALIBRATION), 'base_link', names, lambda: 7)
    pub = node.publishers['/tf_static']
    qos = pub.qos  # tf2_ros StaticBroadcasterQoS: depth 1, reliable, transient local
    assert (qos.depth, qos.history, qos.reliability, qos.durability) == (
        1, HistoryPolicy.KEEP_LAST, ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL)
    assert not rig.observe('CAM_FRONT', 'front')
    assert not rig.observe('CAM_FRONT', '') and not rig.observe('OTHER', 'x')
    assert pub.sent == []  # CAM_BACK's frame is not known yet
    assert rig.observe('CAM_BACK', 'back')
    assert not rig.observe('CAM_BACK', 'back') and not rig.observe('CAM_FRONT', 'front')
    [msg] = pub.sent  # one message holding every camera
    assert [(t.header.frame_id, t.child_frame_id) for t in msg.transforms] == [
        ('base_link', 'front'), ('base_link', 'back')]
    assert rig.observe('CAM_BACK', 'back_optical')  # a changed frame: all again
    assert [t.child_frame_id for t in pub.sent[-1].transforms] == ['front', 'back_optical']
    assert rig.describe() == "base_link -> ['front', 'back_optical']"
