"""rclpy side of the depth-node tests, shared by replayer.py and robust_publisher.py (helper
processes, not tests): publishers, raw recorders of the node's outputs, /diagnostics waits.

Nothing sleeps: every wait spins the node until a condition holds or a deadline passes.
Recorded outputs are raw CDR bytes, decoded by the test with rosbags (independent of rclpy).
"""
import importlib
import json
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import deserialize_message

from da3_ros.ros import qos


def msg_class(type_name: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    package, _, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


class Recorder:
    """Raw subscriptions to the node's outputs and /diagnostics; keeps CDR bytes per topic."""

    def __init__(self, node, outputs: dict[str, str]):
        """outputs: topic -> type name ('sensor_msgs/msg/Image')."""
        self.node, self.types = node, dict(outputs)
        self.raw: dict[str, list[bytes]] = {t: [] for t in outputs}
        self.subs = [node.create_subscription(msg_class(kind), topic,
                                              lambda m, t=topic: self.raw[t].append(m),
                                              qos.reliable(100), raw=True)
                     for topic, kind in outputs.items()]
        self.diagnostics: dict[str, str] = {}
        self.levels: dict[str, int] = {}  # status name -> worst level of any report
        self.diag_raw: list[bytes] = []
        self.subs.append(node.create_subscription(
            DiagnosticArray, '/diagnostics', self._on_diag, qos.reliable(10), raw=True))

    def _on_diag(self, raw: bytes) -> None:
        self.diag_raw.append(raw)
        msg = deserialize_message(raw, DiagnosticArray)
        self.diagnostics = {kv.key: kv.value for s in msg.status for kv in s.values}
        for status in msg.status:
            level = ord(status.level) if isinstance(status.level, bytes) else int(status.level)
            self.levels[status.name] = max(level, self.levels.get(status.name, 0))

    def count(self, topic: str) -> int:
        return len(self.raw[topic])

    def dump(self, folder: Path, published: list) -> None:
        """folder/<i>.cdr files + manifest.json {outputs: {topic: [type, [files]]}, inputs,
        diagnostics: last values, levels: worst level per status name}."""
        folder.mkdir(parents=True, exist_ok=True)
        outputs, n = {}, 0
        for topic, messages in self.raw.items():
            files = []
            for raw in messages:
                (folder / f'{n}.cdr').write_bytes(raw)
                files.append(f'{n}.cdr')
                n += 1
            outputs[topic] = [self.types[topic], files]
        manifest = {'outputs': outputs, 'inputs': published, 'diagnostics': self.diagnostics,
                    'levels': self.levels}
        (folder / 'manifest.json').write_text(json.dumps(manifest))


def spin_until(node, done, timeout_s: float, what: str) -> None:
    """Spin until done() is true; raise TimeoutError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout_s} s waiting for {what}')
        rclpy.spin_once(node, timeout_sec=0.02)


def wait_matched(node, publishers, recorder: Recorder, timeout_s: float) -> None:
    """Every input publisher has the node as subscriber; every output has its publisher."""
    spin_until(node, lambda: all(p.get_subscription_count() for p in publishers)
               and all(s.get_publisher_count() for s in recorder.subs), timeout_s,
               'publisher / subscriber matching')


def wait_diag(node, recorder: Recorder, key: str, at_least: int, timeout_s: float) -> None:
    """Wait until the node's /diagnostics report integer `key` >= at_least."""
    spin_until(node, lambda: int(recorder.diagnostics.get(key, '0')) >= at_least, timeout_s,
               f'diagnostics {key} >= {at_least} (have {recorder.diagnostics.get(key)})')


def wait_diag_value(node, recorder: Recorder, key: str, value: str, timeout_s: float) -> None:
    spin_until(node, lambda: recorder.diagnostics.get(key) == value, timeout_s,
               f'diagnostics {key} == {value}')
