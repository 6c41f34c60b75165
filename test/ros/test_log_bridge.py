"""The ROS-free core logs with Python's `logging`; run_node forwards the 'da3_ros' loggers to
the node's rclpy logger, so those lines reach /rosout (checked by a /rosout subscriber) with
their level, and Python does not print them a second time."""
from __future__ import annotations

import logging
import time

import rclpy
from rcl_interfaces.msg import Log

from da3_ros.ros.node_main import bridge_python_logging


def test_core_log_lines_reach_rosout():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('da3_bridge_test', context=context)
    listener = rclpy.create_node('da3_bridge_listener', context=context)
    received = []
    listener.create_subscription(Log, '/rosout', received.append, 100)
    handler = bridge_python_logging(node)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    try:
        core = logging.getLogger('da3_ros.slam.system')
        deadline = time.monotonic() + 20.0
        mine = []
        while not mine and time.monotonic() < deadline:    # until discovery has matched
            core.warning('chunk %d: overlap alignment failed; pose-only fallback', 3)
            logging.getLogger('da3_ros.engine.compiled').debug('not forwarded')
            executor.spin_once(timeout_sec=0.2)
            mine = [m for m in received if m.name == 'da3_bridge_test']
        assert mine, 'no /rosout message from the node'
        assert mine[0].level == Log.WARN
        assert mine[0].msg == ('[da3_ros.slam.system] chunk 3: overlap alignment failed; '
                               'pose-only fallback')
        assert not any('not forwarded' in m.msg for m in received)       # below INFO
        assert logging.getLogger('da3_ros').propagate is False
    finally:
        logging.getLogger('da3_ros').removeHandler(handler)
        logging.getLogger('da3_ros').propagate = True
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
        rclpy.shutdown(context=context)
