"""N-input approximate-time synchroniser: pure Python, no rclpy, so every case is unit-testable.

Each input keeps a queue in stamp order. After every add, sets are formed greedily with the
lowest latency: the pivot is the newest queue head; a head older than pivot - slop can never be
matched and is dropped ('unmatched'), as is a head whose successor lies at least as close to the
pivot; once no head is dropped, all heads lie within slop of each other and form a set. Time is
only ever message stamp time (never the wall clock), which keeps the behaviour deterministic.

Drop causes (counter keys of `drops`):
- 'duplicate', 'out_of_order': the incoming message's stamp equals / precedes the last one on
  its input; add() raises SyncError with that cause (and counts it).
- 'unmatched': an accepted message that no set can contain (other inputs moved past it).
- 'stale_partial': an accepted message that waited longer than max_wait (in stamp time, against
  the newest stamp seen on any input) without its set completing, e.g. a camera stopped.
- 'queue_overflow': the oldest message of an input whose queue exceeded queue_size.
"""

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from da3_ros.errors import ConfigError
from da3_ros.ros.errors import SyncError

CAUSES = ('duplicate', 'out_of_order', 'unmatched', 'stale_partial', 'queue_overflow')


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (sec, nanosec) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass(frozen=True)
class SyncedSet:
    """One message per input, all stamps within slop of each other.

    stamps_ns: per input, its message's stamp in ns; items: per input, what add() was given
    """

    stamps_ns: tuple[int, ...]
    items: tuple[Any, ...]

    @property
    def stamp_ns(self) -> int:
        """The newest stamp of the set: the set's stamp (e.g. for the fused cloud)."""
        return max(self.stamps_ns)


class ApproximateTimeSync:
    """Forms complete sets of N inputs whose stamps lie within slop_ns."""

    def __init__(self, n_inputs: int, slop_ns: int, queue_size: int = 10,
                 max_wait_ns: int = 1_000_000_000):
        """n_inputs >= 1; slop_ns >= 0; queue_size >= 1 messages per input;
        max_wait_ns >= slop_ns: stamp-time age after which a waiting message is dropped. Keep
        it above the slowest input's period, or frames of faster inputs count as stale."""
        if n_inputs < 1 or slop_ns < 0 or queue_size < 1:
            raise ConfigError(f'need n_inputs >= 1, slop_ns >= 0, queue_size >= 1; got '
                              f'{n_inputs}, {slop_ns}, {queue_size}')
        self.slop_ns = int(slop_ns)
        self.queue_size = int(queue_size)
        self.max_wait_ns = int(max_wait_ns)
        if self.max_wait_ns < self.slop_ns:
            raise ConfigError(f'max_wait_ns {self.max_wait_ns} < slop_ns {self.slop_ns}')
        self._queues: list[deque] = [deque() for _ in range(n_inputs)]
        self._last_ns: list[int | None] = [None] * n_inputs
        self._drops: Counter = Counter()

    @property
    def drops(self) -> dict[str, int]:
        """A copy of the per-cause drop counts since construction."""
        return dict(self._drops)

    def pending(self) -> list[int]:
        """Messages waiting per input."""
        return [len(q) for q in self._queues]

    def add(self, index: int, stamp_ns: int, item: Any) -> list[SyncedSet]:
        """Offer input `index`'s message; returns the sets it completed (oldest first).

        Raises SyncError('duplicate' / 'out_of_order') for a stamp that does not increase.
        """
        if not 0 <= index < len(self._queues):
            raise IndexError(f'input {index} of {len(self._queues)}')
        last = self._last_ns[index]
        if last is not None and stamp_ns <= last:
            cause = 'duplicate' if stamp_ns == last else 'out_of_order'
            self._drops[cause] += 1
            raise SyncError(cause, f'input {index}: stamp {stamp_ns} ns after {last} ns')
        self._last_ns[index] = stamp_ns
        queue = self._queues[index]
        queue.append((stamp_ns, item))
        if len(queue) > self.queue_size:
            queue.popleft()
            self._drops['queue_overflow'] += 1
        self._drop_stale(max(t for t in self._last_ns if t is not None))
        return self._match()

    def reset(self) -> None:
        """Forget queued messages and last stamps (e.g. after a bag loops); keeps drop counts."""
        for queue in self._queues:
            queue.clear()
        self._last_ns = [None] * len(self._queues)

    def _drop_stale(self, newest_ns: int) -> None:
        for queue in self._queues:
            while queue and queue[0][0] < newest_ns - self.max_wait_ns:
                queue.popleft()
                self._drops['stale_partial'] += 1

    def _match(self) -> list[SyncedSet]:
        sets = []
        while all(self._queues):
            pivot = max(q[0][0] for q in self._queues)
            dropped = False
            for queue in self._queues:
                too_old = queue[0][0] < pivot - self.slop_ns
                superseded = len(queue) > 1 and abs(queue[1][0] - pivot) <= abs(
                    queue[0][0] - pivot)
                if too_old or superseded:
                    queue.popleft()
                    self._drops['unmatched'] += 1
                    dropped = True
                    break  # the pivot may have changed: look again
            if not dropped:
                heads = [q.popleft() for q in self._queues]
                sets.append(SyncedSet(tuple(t for t, _ in heads), tuple(x for _, x in heads)))
        return sets
