"""TF helpers: matrix <-> message (x, y, z, w), lookups by chaining vs explicit matrix products,
nearest-stamp dynamic transforms, every rejection cause, and tf2_ros's QoS profiles."""

import numpy as np
import pytest
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
from tf2_msgs.msg import TFMessage
from transforms3d.euler import euler2mat

from da3_ros.ros import qos
from da3_ros.ros.errors import TfError
from da3_ros.ros.tf_buffer import (
    TfBuffer,
    make_tf_message,
    make_transform_stamped,
    matrix_to_transform,
    ns_to_stamp,
    transform_to_matrix,
)

S = 1_000_000_000  # ns per second


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(99)


def random_T(rng) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = euler2mat(*rng.uniform(-np.pi, np.pi, 3))
    T[:3, 3] = rng.uniform(-5, 5, 3)
    return T


def test_quaternion_is_xyzw_in_the_message():
    T = np.eye(4)
    T[:3, :3] = euler2mat(0.0, 0.0, np.pi / 2)  # 90 degrees about z
    T[:3, 3] = [1.0, 2.0, 3.0]
    msg = matrix_to_transform(T)
    q = msg.rotation
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], [0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    assert (msg.translation.x, msg.translation.y, msg.translation.z) == (1.0, 2.0, 3.0)


def test_matrix_message_round_trip(rng):
    for _ in range(20):
        T = random_T(rng)
        np.testing.assert_allclose(transform_to_matrix(matrix_to_transform(T)), T, atol=1e-12)


def test_tf_message_fields():
    msg = make_tf_message([('base_link', 'cam', np.eye(4), 3 * S + 7)])
    (tf,) = msg.transforms
    assert (tf.header.frame_id, tf.child_frame_id) == ('base_link', 'cam')
    assert (tf.header.stamp.sec, tf.header.stamp.nanosec) == (3, 7)
    assert ns_to_stamp(1_700_000_000_123_456_789).nanosec == 123_456_789


@pytest.fixture
def tree(rng):
    """map -> odom (dynamic) -> base (dynamic) -> cam_left, cam_right (static)."""
    T = {name: random_T(rng) for name in ('map_odom', 'odom_base', 'base_left', 'base_right')}
    buffer = TfBuffer()
    buffer.ingest(make_tf_message([('base', 'cam_left', T['base_left'], 0),
                                   ('base', 'cam_right', T['base_right'], 0)]), static=True)
    buffer.ingest(make_tf_message([('map', 'odom', T['map_odom'], 5 * S),
                                   ('odom', 'base', T['odom_base'], 5 * S)]), static=False)
    return buffer, T


def test_chained_lookups_equal_matrix_products(tree):
    buffer, T = tree
    T_map_left = T['map_odom'] @ T['odom_base'] @ T['base_left']
    np.testing.assert_allclose(buffer.lookup('map', 'cam_left'), T_map_left, atol=1e-9)
    np.testing.assert_allclose(buffer.lookup('cam_left', 'map'), np.linalg.inv(T_map_left),
                               atol=1e-9)
    T_left_right = np.linalg.inv(T['base_left']) @ T['base_right']
    np.testing.assert_allclose(buffer.lookup('cam_left', 'cam_right'), T_left_right, atol=1e-9)
    T_odom_right = T['odom_base'] @ T['base_right']
    np.testing.assert_allclose(buffer.lookup('odom', 'cam_right'), T_odom_right, atol=1e-9)
    np.testing.assert_allclose(buffer.lookup('base', 'base'), np.eye(4))
    assert buffer.frames() == {'map', 'odom', 'base', 'cam_left', 'cam_right'}


def test_dynamic_lookup_uses_nearest_stamp(tree, rng):
    buffer, T = tree
    later, earlier = random_T(rng), random_T(rng)
    buffer.ingest(make_tf_message([('odom', 'base', later, 7 * S)]), static=False)
    buffer.ingest(make_tf_message([('odom', 'base', earlier, 3 * S)]), static=False)  # late
    cases = [(None, later), (int(6.1 * S), later), (int(5.9 * S), T['odom_base']),
             (3 * S, earlier), (0, earlier), (100 * S, later)]
    for stamp_ns, expected in cases:
        np.testing.assert_allclose(buffer.lookup('odom', 'base', stamp_ns), expected, atol=1e-9)
    with pytest.raises(TfError) as err:
        buffer.lookup('odom', 'base', 100 * S, tolerance_ns=S)
    assert err.value.cause == 'extrapolation'
    np.testing.assert_allclose(buffer.lookup('odom', 'base', int(7.5 * S), tolerance_ns=S),
                               later, atol=1e-9)


def test_repeated_stamp_replaces_and_old_history_is_pruned(rng):
    buffer = TfBuffer(cache_ns=2 * S)
    first, second, third = random_T(rng), random_T(rng), random_T(rng)
    buffer.ingest(make_tf_message([('odom', 'base', first, 1 * S)]), static=False)
    buffer.ingest(make_tf_message([('odom', 'base', second, 1 * S)]), static=False)
    np.testing.assert_allclose(buffer.lookup('odom', 'base', 1 * S), second, atol=1e-9)
    buffer.ingest(make_tf_message([('odom', 'base', third, 10 * S)]), static=False)
    np.testing.assert_allclose(buffer.lookup('odom', 'base', 1 * S), third, atol=1e-9)


def test_unnormalised_quaternion_is_normalised():
    msg = make_transform_stamped('a', 'b', np.eye(4), 0)
    msg.transform.rotation.w = 2.0
    buffer = TfBuffer()
    buffer.add_transform(msg, static=True)
    np.testing.assert_allclose(buffer.lookup('a', 'b'), np.eye(4))


def bad_transform(parent='a', child='b', **rotation) -> TransformStamped:
    msg = make_transform_stamped(parent, child, np.eye(4), 0)
    for key, value in rotation.items():
        setattr(msg.transform.rotation, key, value)
    return msg


REJECTED = [
    (bad_transform(parent='/a'), 'bad_frame_id'),
    (bad_transform(child=''), 'bad_frame_id'),
    (bad_transform(child='a'), 'self_transform'),
    (bad_transform(w=0.0), 'bad_quaternion'),
    (bad_transform(x=float('nan')), 'bad_transform'),
]


@pytest.mark.parametrize(('msg', 'cause'), REJECTED)
def test_bad_transform_gives_cause(msg, cause):
    with pytest.raises(TfError) as err:
        TfBuffer().add_transform(msg, static=False)
    assert err.value.cause == cause


def test_ingest_keeps_good_transforms_and_counts_bad_ones():
    buffer = TfBuffer()
    good = make_transform_stamped('a', 'b', np.eye(4), 0)
    stored = buffer.ingest(TFMessage(transforms=[msg for msg, _ in REJECTED] + [good]),
                           static=True)
    assert stored == 1
    assert buffer.rejected == {'bad_frame_id': 2, 'self_transform': 1, 'bad_quaternion': 1,
                               'bad_transform': 1}


def test_matrix_that_is_not_a_rotation_is_rejected():
    for T in (np.diag([2.0, 1.0, 1.0, 1.0]), np.diag([-1.0, 1.0, 1.0, 1.0]),
              np.full((4, 4), np.nan), np.eye(3)):
        with pytest.raises(TfError) as err:
            matrix_to_transform(T)
        assert err.value.cause == 'bad_transform'


def test_lookup_failures_give_cause(tree):
    buffer, _ = tree
    buffer.ingest(make_tf_message([('world', 'island', np.eye(4), 0)]), static=True)
    for target, source, cause in [('map', 'nowhere', 'unknown_frame'),
                                  ('island', 'cam_left', 'not_connected')]:
        with pytest.raises(TfError) as err:
            buffer.lookup(target, source)
        assert err.value.cause == cause
    buffer.ingest(make_tf_message([('cam_left', 'map', np.eye(4), 0)]), static=True)
    with pytest.raises(TfError) as err:
        buffer.lookup('map', 'cam_right')
    assert err.value.cause == 'loop'


def test_qos_profiles_match_tf2_ros():
    reliable, transient = ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL
    profiles = {
        'TF': (qos.TF, 100, reliable, DurabilityPolicy.VOLATILE),
        'TF_STATIC_BROADCASTER': (qos.TF_STATIC_BROADCASTER, 1, reliable, transient),
        'TF_STATIC_LISTENER': (qos.TF_STATIC_LISTENER, 100, reliable, transient),
        'reliable': (qos.reliable(), 10, reliable, DurabilityPolicy.VOLATILE),
        'SENSOR_DATA': (qos.SENSOR_DATA, 5, ReliabilityPolicy.BEST_EFFORT,
                        DurabilityPolicy.VOLATILE),
    }
    for name, (profile, depth, reliability, durability) in profiles.items():
        got = (profile.depth, profile.reliability, profile.durability, profile.history)
        assert got == (depth, reliability, durability, HistoryPolicy.KEEP_LAST), name
