"""One thread that publishes a node's outputs, so that computing the next set overlaps with
publishing this one.

The depth node's worker builds a set's messages (about 20 MB for 6 cameras of 1600 x 900:
depth, confidence, clouds, fused cloud, RigDepth) and hands them over here; rclpy's publish
then converts and serialises them while the worker already uploads the next set and waits for
the GPU (waits that release the GIL). Without the hand-over the two are serial, and the
publish time is added to every set's period.

At most one set waits here: submit() blocks while the previous set is still being published,
so publishing can never fall behind without bound, and no set is dropped here (the node's one
drop policy, 'busy', stays where sets enter the worker).

Why in the ROS shell though it imports nothing of ROS: what it runs is rclpy publish calls
handed over by a node; it takes plain callables so that it is tested without a graph.
"""
from __future__ import annotations

import threading
from collections.abc import Callable


class PublishThread:
    """publish(item) runs on this thread for every submitted item, in order; an exception it
    raises goes to on_error(exc) and the thread goes on."""

    def __init__(self, publish: Callable[[object], None],
                 on_error: Callable[[Exception], None], name: str = 'da3_publish'):
        self._publish, self._on_error = publish, on_error
        self._item = None
        self._busy = False
        self._stopping = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item) -> None:
        """Hand over one item; waits while the previous one is still waiting to be taken."""
        with self._cv:
            while self._item is not None and not self._stopping:
                self._cv.wait()
            if self._stopping:
                return
            self._item = item
            self._cv.notify_all()

    def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until every submitted item is published; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: self._item is None and not self._busy, timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish nothing more (a waiting item is discarded) and join the thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._item is None and not self._stopping:
                    self._cv.wait()
                if self._stopping:
                    return
                item, self._item, self._busy = self._item, None, True
                self._cv.notify_all()
            try:
                self._publish(item)
            except Exception as err:  # a failing publish must not stop the thread
                self._on_error(err)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
