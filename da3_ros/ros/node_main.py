"""The `main()` every da3_ros node shares: start, refuse bad parameters with exit code 2, spin,
and stop cleanly on SIGINT / SIGTERM.

Stopping: rclpy's own signal handlers are not installed (they would shut the context down at
once, under a worker thread that is still inside the network and then publishes into it).
Instead the first SIGINT or SIGTERM ends the spin loop; the node's destroy_node stops taking
new sets, waits for the set in flight (publishing nothing more) and joins its threads; then the
node is destroyed and rclpy shut down: exit code 0. Further signals are ignored.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from da3_ros.errors import Da3RosError

STOP_WAIT_S = 60.0  # how long destroy_node waits for a worker's set / chunk in flight
_SPIN_PERIOD_S = 0.1  # how soon the spin loop sees a signal


class RosLogHandler(logging.Handler):
    """Python `logging` records -> an rclpy logger, so that what the ROS-free core logs (the
    SLAM system's fallbacks, the engine's compile and capture warnings) reaches the node's
    console output and /rosout like the node's own lines."""

    LEVELS = ((logging.CRITICAL, 'fatal'), (logging.ERROR, 'error'),
              (logging.WARNING, 'warning'), (logging.INFO, 'info'))

    def __init__(self, ros_logger):
        super().__init__(logging.INFO)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = next((name for no, name in self.LEVELS if record.levelno >= no), 'debug')
            getattr(self.ros_logger, level)(f'[{record.name}] {self.format(record)}')
        except Exception:  # a log line must never take the node down
            self.handleError(record)


def bridge_python_logging(node: Node) -> RosLogHandler:
    """Forward the 'da3_ros' Python loggers (INFO and up) to node's logger; returns the
    handler (remove it with logging.getLogger('da3_ros').removeHandler)."""
    handler = RosLogHandler(node.get_logger())
    package = logging.getLogger('da3_ros')
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False          # printed once, by rclpy, not again by Python's stderr
    return handler


def run_node(make_node: Callable[[], Node], logger_name: str, args=None) -> int:
    """Init rclpy, build the node, spin until SIGINT / SIGTERM / shutdown; 2 when the node
    refuses to start (ConfigError and other da3_ros errors from its constructor, logged as
    FATAL), else 0."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    logger = rclpy.logging.get_logger(logger_name)
    try:
        node = make_node()
    except Da3RosError as err:
        logger.fatal(f'bad parameter, not starting: {err}')
        rclpy.try_shutdown()
        return 2
    bridge_python_logging(node)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:  # runs on the main thread, between bytecodes
        if not stop.is_set():
            stop.set()
            logger.info(f'{signal.Signals(signum).name}: stopping after the work in flight')

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():  # a timeout, so the loop sees the signal
            executor.spin_once(timeout_sec=_SPIN_PERIOD_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()   # joins the node's threads (bounded by STOP_WAIT_S)
        # the node's own daemon threads (named da3_*), not other libraries' helpers
        hanging = [t.name for t in threading.enumerate() if t.daemon and t.is_alive()
                   and t.name.startswith('da3_') and t is not threading.current_thread()]
        if hanging:
            logger.warning(f'threads {hanging} still running after {STOP_WAIT_S:g} s; '
                           'exiting without waiting for them')
        rclpy.try_shutdown()
    if hanging:
        _exit_now()
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    return 0


def _exit_now() -> None:
    """Last resort when a daemon thread outlived destroy_node's bounded join (a network call
    far longer than STOP_WAIT_S): the interpreter's normal exit would tear down under that
    thread while it is inside torch's C++ code, which aborts the process ('terminate called
    without an active exception', exit -6). os._exit(0) ends it without finalisation, after
    flushing what was logged. (Non-daemon threads, e.g. idle thread pools, are joined by the
    interpreter as usual and are not counted as hanging.)"""
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)  # C stdio buffers (rcutils console output)
    os._exit(0)
