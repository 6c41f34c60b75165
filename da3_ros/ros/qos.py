"""QoS presets for da3_ros topics, including the exact ones tf2_ros uses for /tf and /tf_static.

Sources (ros2/geometry2): tf2_ros/include/tf2_ros/qos.hpp (C++), and tf2_ros_py's
transform_broadcaster.py, static_transform_broadcaster.py and transform_listener.py (Python).
rclpy's QoSProfile defaults to RELIABLE + VOLATILE, so "depth=100" there means reliable.
"""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Cameras and our depth/cloud outputs for users: best effort, volatile, keep last 5.
SENSOR_DATA: QoSProfile = qos_profile_sensor_data


def reliable(depth: int = 10) -> QoSProfile:
    """Reliable, volatile, keep last `depth`: for tests that count messages."""
    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
        history=HistoryPolicy.KEEP_LAST,
    )


# /tf, both sides: tf2_ros DynamicBroadcasterQoS / DynamicListenerQoS = QoS(100).
TF: QoSProfile = reliable(100)

# /tf_static publisher: tf2_ros StaticBroadcasterQoS = QoS(1).transient_local(). Depth 1 means a
# late joiner only gets the LAST message, so a broadcaster must republish every static transform
# it owns in one TFMessage (StaticTfBroadcaster does).
TF_STATIC_BROADCASTER = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)

# /tf_static subscriber: tf2_ros StaticListenerQoS / Python TransformListener = depth 100,
# transient local, so that it can receive the latched message of every static broadcaster.
TF_STATIC_LISTENER = QoSProfile(
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
