"""Pure geometry (numpy/torch, no rclpy): alignment, transforms, projection."""
