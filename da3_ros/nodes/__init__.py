"""rclpy nodes: thin adapters wiring da3_ros.ros (messages, sync, TF) to da3_ros.engine."""
