"""One worker thread that always processes the newest submitted set.

The network is slower than the cameras, so sets must not queue up behind it: at most one set
waits while the worker is busy, and a newer set replaces it (the older one is 'overtaken' and
dropped: the node counts it with cause 'busy'). The node's executor thread submits; only the
worker thread calls `process`.

Why in the ROS shell though it imports nothing of ROS: it is the depth node's drop policy
(a set overtaken while the network is busy is the /diagnostics cause 'busy'), between the
node's executor callbacks and its publishers; kept free of rclpy so that it is tested with
plain threads.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class NewestSetWorker:
    """process(item, submitted_at) runs on the worker thread for the newest waiting item;
    on_error(err) gets what process raised (the worker goes on); submitted_at is clock()."""

    def __init__(self, process: Callable[[Any, float], None],
                 on_error: Callable[[Exception], None], name: str = 'da3_worker',
                 clock: Callable[[], float] = time.perf_counter):
        self._process, self._on_error, self._clock = process, on_error, clock
        self._pending: tuple[Any, float] | None = None
        self._wake = threading.Condition()
        self.stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Queue item for the worker; True when it overtook a set that was still waiting."""
        with self._wake:
            overtaken = self._pending is not None
            self._pending = (item, self._clock())
            self._wake.notify()
        return overtaken

    def request_stop(self) -> None:
        """Take no more sets: a set still waiting is never processed."""
        with self._wake:
            self.stopping = True
            self._wake.notify()

    def join(self, timeout_s: float) -> None:
        """Wait up to timeout_s for the set in process to finish (after request_stop)."""
        self._thread.join(timeout=timeout_s)

    def _next(self) -> tuple[Any, float] | None:
        """The newest waiting item, or None once stopping."""
        with self._wake:
            while self._pending is None and not self.stopping:
                self._wake.wait()
            if self.stopping:
                return None
            item, self._pending = self._pending, None
            return item

    def _run(self) -> None:
        while (pending := self._next()) is not None:
            try:
                self._process(*pending)
            except Exception as err:  # a failing set must not stop the worker
                self._on_error(err)
