"""The `main()` every da3_ros node shares: start, refuse bad parameters with exit code 2, spin."""
from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from da3_ros.errors import Da3RosError


def run_node(make_node: Callable[[], Node], logger_name: str, args=None) -> int:
    """Init rclpy, build the node, spin until shutdown; 2 when the node refuses to start
    (ConfigError and other da3_ros errors from its constructor, logged as FATAL), else 0."""
    rclpy.init(args=args)
    try:
        node = make_node()
    except Da3RosError as err:
        rclpy.logging.get_logger(logger_name).fatal(f'bad parameter, not starting: {err}')
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
