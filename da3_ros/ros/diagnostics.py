"""Depth-node health -> diagnostic_msgs/DiagnosticArray: input rates, stage latencies, drops by
cause, GPU memory. Plus a per-cause log throttle, so one bad camera cannot flood the log.

Counters are monotonic since start (tools diff them); rates and latencies cover a sliding
window. Status names are '<node>: inputs', ': pipeline', ': drops', ': gpu'; every value is a
KeyValue with a dotted key, e.g. 'drops.truncated' = '2', 'CAM_FRONT.rate_hz' = '9.98',
'latency_ms.inference.mean' = '812.4'. Drops, the synchroniser's included, are also counted
per source ('drops.<camera>.<cause>', 'drops.rig.<cause>'); the drops status is WARN when their
total grew since the last report. Frames of a faster camera that a closer frame of the same
camera replaced are normal: 'superseded' and 'superseded.<camera>', never WARN. Time jumps:
'sync.time_jumps', of which 'sync.resets' reset the synchroniser (drop cause 'time_jump').
Thread-safe: callbacks and the worker both report.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from da3_ros.ros.time_sync import SyncCounts

WINDOW = 50  # samples kept per rate / latency


class CauseThrottle:
    """should_log(cause) is True at most once per period_s per cause (monotonic clock)."""

    def __init__(self, period_s: float, clock=time.monotonic):
        self.period_s, self._clock = period_s, clock
        self._last: dict[str, float] = {}

    def should_log(self, cause: str) -> bool:
        now = self._clock()
        if cause in self._last and now - self._last[cause] < self.period_s:
            return False
        self._last[cause] = now
        return True


def gpu_memory_mb() -> dict[str, float] | None:
    """Allocated / reserved / peak CUDA memory of this process in MiB, None without CUDA."""
    import sys
    torch = sys.modules.get('torch')  # only report when the predictor already loaded torch
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    mib = 1024.0 ** 2
    return {'allocated_mb': torch.cuda.memory_allocated() / mib,
            'reserved_mb': torch.cuda.memory_reserved() / mib,
            'max_allocated_mb': torch.cuda.max_memory_allocated() / mib}


def _kv(key: str, value) -> KeyValue:
    text = f'{value:.3f}' if isinstance(value, float) else str(value)
    return KeyValue(key=key, value=text)


class DepthDiagnostics:
    """Counters and windows for the depth node; to_message() renders them."""

    def __init__(self, camera_names: list[str], clock=time.monotonic):
        self.camera_names = list(camera_names)
        self._clock = clock
        self._lock = threading.Lock()
        self._arrivals = {n: deque(maxlen=WINDOW) for n in self.camera_names}
        self.received: Counter = Counter()     # '<camera>.images' / '<camera>.camera_info'
        self.drops: Counter = Counter()        # cause -> count
        self.drops_by_source: Counter = Counter()  # (source, cause) -> count
        self._latency: dict[str, deque] = {}
        self.sets_synced = 0
        self.sets_processed = 0
        self._drops_reported = 0

    def image_received(self, camera: str) -> None:
        with self._lock:
            self.received[f'{camera}.images'] += 1
            self._arrivals[camera].append(self._clock())

    def info_received(self, camera: str) -> None:
        with self._lock:
            self.received[f'{camera}.camera_info'] += 1

    def drop(self, cause: str, source: str = 'rig', count: int = 1) -> None:
        with self._lock:
            self.drops[cause] += count
            self.drops_by_source[(source, cause)] += count

    def stage(self, name: str, seconds: float) -> None:
        with self._lock:
            self._latency.setdefault(name, deque(maxlen=WINDOW)).append(seconds * 1e3)

    def synced(self) -> None:
        with self._lock:
            self.sets_synced += 1

    def processed(self) -> None:
        with self._lock:
            self.sets_processed += 1

    def rate_hz(self, camera: str) -> float:
        """Arrival rate over the window (0 with fewer than 2 arrivals)."""
        times = self._arrivals[camera]
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def to_message(self, header: Header, node_name: str, sync: SyncCounts | None = None,
                   extra_inputs: dict[str, str] | None = None) -> DiagnosticArray:
        """Render all counters. sync: ApproximateTimeSync.counts() (inputs in camera order),
        its drops added to the node's own; extra_inputs: more KeyValues for the inputs status."""
        sync = sync or SyncCounts({}, (0,) * len(self.camera_names), 0, 0)
        with self._lock:
            inputs = [_kv(k, v) for k, v in sorted(self.received.items())]
            inputs += [_kv(f'{n}.rate_hz', self.rate_hz(n)) for n in self.camera_names]
            inputs += [_kv(k, v) for k, v in (extra_inputs or {}).items()]
            pipeline = [_kv('sets_synced', self.sets_synced),
                        _kv('sets_processed', self.sets_processed)]
            for name, samples in sorted(self._latency.items()):
                pipeline += [_kv(f'latency_ms.{name}.last', samples[-1]),
                             _kv(f'latency_ms.{name}.mean', sum(samples) / len(samples)),
                             _kv(f'latency_ms.{name}.max', max(samples))]
            totals, by_source = Counter(self.drops), Counter(self.drops_by_source)
            for (index, cause), n in sync.drops.items():
                totals[cause] += n
                by_source[(self.camera_names[index], cause)] += n
            drops = [_kv(f'drops.{c}', n) for c, n in sorted(totals.items())]
            drops += [_kv(f'drops.{s}.{c}', n) for (s, c), n in sorted(by_source.items())]
            superseded = sum(sync.superseded)
            drops += [_kv('superseded', superseded)]
            drops += [_kv(f'superseded.{name}', n)
                      for name, n in zip(self.camera_names, sync.superseded, strict=True) if n]
            drops += [_kv('sync.time_jumps', sync.time_jumps), _kv('sync.resets', sync.resets)]
            total = sum(totals.values())
            new_drops, self._drops_reported = total > self._drops_reported, total
        gpu = gpu_memory_mb()
        gpu_values = ([_kv('device', 'cpu or CUDA not initialised')] if gpu is None
                      else [_kv(f'gpu.{k}', v) for k, v in gpu.items()])
        ok, warn = DiagnosticStatus.OK, DiagnosticStatus.WARN

        def status(part: str, level, message: str, values: list) -> DiagnosticStatus:
            return DiagnosticStatus(level=level, name=f'{node_name}: {part}', message=message,
                                    hardware_id=node_name, values=values)

        return DiagnosticArray(header=header, status=[
            status('inputs', ok, f'{len(self.camera_names)} cameras', inputs),
            status('pipeline', ok, f'{self.sets_processed} sets processed', pipeline),
            status('drops', warn if new_drops else ok,
                   f'{total} dropped' + (' (new since last report)' if new_drops else '')
                   + f', {superseded} superseded by a closer frame (normal)' * bool(superseded),
                   drops),
            status('gpu', ok, 'memory', gpu_values),
        ])


def diagnostics_values(msg) -> dict[str, str]:
    """Every KeyValue of a DiagnosticArray as {key: value} (tests, tools)."""
    return {kv.key: kv.value for status in msg.status for kv in status.values}
