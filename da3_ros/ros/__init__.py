"""The rclpy-aware core: message <-> numpy conversions, QoS presets, time sync and TF helpers.

Nodes wire these to the engine; nothing here runs a model. tf2_ros, cv_bridge, message_filters
and sensor_msgs_py are not installable here, so the small parts of them
that da3_ros needs live in this package.
"""
