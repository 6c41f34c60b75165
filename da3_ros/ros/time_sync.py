"""N-input approximate-time synchroniser: pure Python, no rclpy, so every case is unit-testable.

Each input keeps a queue in stamp order. After every add, sets are formed greedily with the
lowest latency: the pivot is the newest queue head; a head whose successor lies at least as
close to the pivot is replaced by it ('superseded'); a head older than pivot - slop can never be
matched and is dropped ('unmatched') once its successor shows it is not superseded (until then
it waits: the input needs a newer frame for the set anyway); once no head is dropped, all heads
lie within slop of each other and form a set. Time is only ever message stamp time (never the
wall clock), which keeps the behaviour deterministic.

Time jumps: a stamp further than max_jump from the newest stamp accepted on any input, forward
or backward, is held back instead of being queued. The next message decides: one near the held
stamp from another input (or from the only input) confirms a new timeline (a bag played with
--loop, a sim clock reset): the synchroniser resets, discarding what was queued, and goes on
with the held frames; one near the old timeline shows the held frames were bad stamps: they
are dropped and nothing else is touched. Either way one 'time_jump' event is reported. So one
frame stamped an hour ahead costs that frame only, instead of making every later frame stale.

Drop causes (counter keys of `drops`, also counted per input in `counts()`):
- 'duplicate', 'out_of_order': the incoming message's stamp equals / precedes the last one on
  its input (within max_jump); add() raises SyncError with that cause (and counts it).
- 'unmatched': an accepted message that no set can contain (other inputs moved past it and
  its own successor is no closer).
- 'stale_partial': an accepted message that waited longer than max_wait (in stamp time, against
  the newest stamp seen on any input) without its set completing, e.g. a camera stopped.
- 'queue_overflow': the oldest message of an input whose queue exceeded queue_size.
- 'time_jump': a held frame judged a bad stamp, or a frame queued when a time jump reset the
  synchroniser.
Not a drop: 'superseded', a frame replaced by a newer frame of the same input that lies closer
to the other inputs' stamps; normal for an input faster than the others (counted apart).
Events worth a log line (time jumps and drops other than duplicate / out_of_order, which add()
raises) are kept for `take_events()`.

Why in the ROS shell though it imports nothing of ROS: it synchronises message
streams for both nodes and the offline bag reader, by message header stamps (`stamp_to_ns`
reads a builtin_interfaces Time), and its rejections are the shell's SyncError (a
MessageError, counted by cause in /diagnostics). The core never sees messages or stamps.
"""

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from da3_ros.errors import ConfigError
from da3_ros.ros.errors import SyncError

CAUSES = ('duplicate', 'out_of_order', 'unmatched', 'stale_partial', 'queue_overflow',
          'time_jump')
NS_PER_S = 1_000_000_000
DEFAULT_MAX_JUMP_NS = 5 * NS_PER_S
EVENTS_KEPT = 100  # events not yet taken beyond this are forgotten (their counts are kept)


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (sec, nanosec) -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def seconds_to_ns(seconds: float) -> int:
    """A duration or stamp in seconds (parameters, CLI options) -> integer nanoseconds, the
    unit of every stamp inside the package."""
    return round(seconds * NS_PER_S)


def _s(ns: int) -> str:
    return f'{ns / 1e9:.3f} s'


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


@dataclass(frozen=True)
class SyncEvent:
    """Something worth a (throttled) log line: cause (a drop cause), the input it concerns,
    text (without the input's name)."""

    cause: str
    input: int
    text: str


@dataclass(frozen=True)
class SyncCounts:
    """The synchroniser's counters since construction.

    drops: (input, cause) -> frames dropped; superseded: per input, frames replaced by a newer
    frame of the same input (not drops); time_jumps: jumps detected; resets: those of them that
    reset the synchroniser (the others were bad stamps, dropped alone)
    """

    drops: dict[tuple[int, str], int]
    superseded: tuple[int, ...]
    time_jumps: int
    resets: int


class ApproximateTimeSync:
    """Forms complete sets of N inputs whose stamps lie within slop_ns."""

    def __init__(self, n_inputs: int, slop_ns: int, queue_size: int = 10,
                 max_wait_ns: int = 1_000_000_000, max_jump_ns: int | None = None):
        """n_inputs >= 1; slop_ns >= 0; queue_size >= 1 messages per input;
        max_wait_ns >= slop_ns: stamp-time age after which a waiting message is dropped. Keep
        it above the slowest input's period, or frames of faster inputs count as stale.
        max_jump_ns >= max_wait_ns: a stamp further than this from the newest stamp is a time
        jump (default: the larger of 5 s and max_wait_ns)."""
        if n_inputs < 1:
            raise ConfigError(f'need n_inputs >= 1, got {n_inputs}')
        self.configure(slop_ns, queue_size, max_wait_ns, max_jump_ns)
        self._queues: list[deque] = [deque() for _ in range(n_inputs)]
        self._last_ns: list[int | None] = [None] * n_inputs
        self._held: list[tuple[int, int, Any]] = []  # (input, stamp, item) after a time jump
        self._drops: Counter = Counter()             # (input, cause) -> count
        self._superseded = [0] * n_inputs
        self._time_jumps = self._resets = 0
        self._events: deque[SyncEvent] = deque(maxlen=EVENTS_KEPT)

    def configure(self, slop_ns: int, queue_size: int, max_wait_ns: int,
                  max_jump_ns: int | None = None) -> None:
        """Set the bounds (as the constructor; also on a running synchroniser, e.g. from
        `ros2 param set`): they apply from the next add(); frames already waiting stay, a queue
        longer than a smaller queue_size is cut at that input's next frame."""
        if slop_ns < 0 or queue_size < 1:
            raise ConfigError(f'need slop_ns >= 0, queue_size >= 1; got {slop_ns}, '
                              f'{queue_size}')
        max_jump_ns = int(max(DEFAULT_MAX_JUMP_NS, max_wait_ns) if max_jump_ns is None
                          else max_jump_ns)
        if max_wait_ns < slop_ns:
            raise ConfigError(f'max_wait_ns {int(max_wait_ns)} < slop_ns {int(slop_ns)}')
        if max_jump_ns < max_wait_ns:
            raise ConfigError(f'max_jump_ns {max_jump_ns} < max_wait_ns {int(max_wait_ns)}')
        self.slop_ns, self.queue_size = int(slop_ns), int(queue_size)
        self.max_wait_ns, self.max_jump_ns = int(max_wait_ns), max_jump_ns

    @property
    def drops(self) -> dict[str, int]:
        """Frames dropped per cause since construction, all inputs together (a copy)."""
        totals: Counter = Counter()
        for (_, cause), count in self._drops.items():
            totals[cause] += count
        return dict(totals)

    def counts(self) -> SyncCounts:
        """A snapshot of every counter, per input."""
        return SyncCounts(dict(self._drops), tuple(self._superseded), self._time_jumps,
                          self._resets)

    def take_events(self) -> list[SyncEvent]:
        """The events since the last call (oldest first), for the log."""
        events = list(self._events)
        self._events.clear()
        return events

    def pending(self) -> list[int]:
        """Messages waiting per input (queued, or held after a time jump)."""
        waiting = [len(q) for q in self._queues]
        for index, _, _ in self._held:
            waiting[index] += 1
        return waiting

    def add(self, index: int, stamp_ns: int, item: Any) -> list[SyncedSet]:
        """Offer input `index`'s message; returns the sets it completed (oldest first).

        Raises SyncError('duplicate' / 'out_of_order') for a stamp that does not increase.
        """
        if not 0 <= index < len(self._queues):
            raise IndexError(f'input {index} of {len(self._queues)}')
        newest = self._newest()
        if newest is not None and abs(stamp_ns - newest) > self.max_jump_ns:
            return self._jumped(index, stamp_ns, item, newest)
        if self._held:  # back on the timeline: the held frames were bad stamps
            self._drop_held(newest)
        return self._accept(index, stamp_ns, item)

    def reset(self) -> None:
        """Forget queued and held messages and last stamps; keeps the counters."""
        for queue in self._queues:
            queue.clear()
        self._last_ns = [None] * len(self._queues)
        self._held = []

    def _newest(self) -> int | None:
        return max((t for t in self._last_ns if t is not None), default=None)

    def _count(self, index: int, cause: str, text: str | None = None) -> None:
        self._drops[(index, cause)] += 1
        if text is not None:
            self._events.append(SyncEvent(cause, index, text))

    def _accept(self, index: int, stamp_ns: int, item: Any) -> list[SyncedSet]:
        last = self._last_ns[index]
        if last is not None and stamp_ns <= last:
            cause = 'duplicate' if stamp_ns == last else 'out_of_order'
            self._count(index, cause)
            raise SyncError(cause, f'input {index}: stamp {stamp_ns} ns after {last} ns')
        self._last_ns[index] = stamp_ns
        queue = self._queues[index]
        queue.append((stamp_ns, item))
        while len(queue) > self.queue_size:
            old, _ = queue.popleft()
            self._count(index, 'queue_overflow', f'more than {self.queue_size} frames wait for '
                        f'their set: dropped the oldest (stamp {old} ns)')
        self._drop_stale(max(t for t in self._last_ns if t is not None))
        return self._match()

    def _jumped(self, index: int, stamp_ns: int, item: Any, newest: int) -> list[SyncedSet]:
        """A stamp more than max_jump from the newest: hold it until the next message shows
        whether the timeline moved (reset) or it was a bad stamp (dropped)."""
        if self._held and abs(stamp_ns - self._held[-1][1]) <= self.max_jump_ns:
            self._held.append((index, stamp_ns, item))
            if len(self._queues) == 1 or any(i != index for i, _, _ in self._held):
                return self._reset_to_held(newest)
            if len(self._held) > self.queue_size:  # one input alone: keep its newest frames
                self._drops[(self._held.pop(0)[0], 'time_jump')] += 1
            return []
        self._drop_held(newest)
        self._held = [(index, stamp_ns, item)]
        return []

    def _drop_held(self, newest: int) -> None:
        """The held frames were bad stamps: drop them, one event."""
        if not self._held:
            return
        index, stamp_ns, _ = self._held[0]
        for i, _, _ in self._held:
            self._drops[(i, 'time_jump')] += 1
        self._time_jumps += 1
        self._events.append(SyncEvent('time_jump', index, (
            f'time jump: {len(self._held)} frame(s) stamped {(stamp_ns - newest) / 1e9:+.3f} s '
            f'from the newest stamp (more than max_jump {_s(self.max_jump_ns)}) dropped as bad '
            f'stamps; the synchroniser goes on')))
        self._held = []

    def _reset_to_held(self, newest: int) -> list[SyncedSet]:
        """The timeline moved: discard what was queued, go on with the held frames."""
        held, (index, stamp_ns, _) = self._held, self._held[0]
        discarded = 0
        for i, queue in enumerate(self._queues):
            if queue:
                self._drops[(i, 'time_jump')] += len(queue)
                discarded += len(queue)
        self.reset()
        self._time_jumps += 1
        self._resets += 1
        self._events.append(SyncEvent('time_jump', index, (
            f'time jump: stamps moved {(stamp_ns - newest) / 1e9:+.3f} s from the newest stamp '
            f'(more than max_jump {_s(self.max_jump_ns)}; a bag loop or a clock reset?): '
            f'synchroniser reset, {discarded} queued frame(s) discarded')))
        sets = []
        for i, stamp, item in held:
            try:
                sets += self._accept(i, stamp, item)
            except SyncError as err:  # counted by _accept
                self._events.append(SyncEvent(err.cause, i, str(err)))
        return sets

    def _drop_stale(self, newest_ns: int) -> None:
        for index, queue in enumerate(self._queues):
            while queue and queue[0][0] < newest_ns - self.max_wait_ns:
                stamp, _ = queue.popleft()
                self._count(index, 'stale_partial', (
                    f'frame stamped {stamp} ns waited more than max_wait '
                    f'{_s(self.max_wait_ns)} (newest stamp {newest_ns} ns) for its set'))

    def _match(self) -> list[SyncedSet]:
        sets = []
        while all(self._queues):
            pivot = max(q[0][0] for q in self._queues)
            dropped = waiting = False
            for index, queue in enumerate(self._queues):
                head = queue[0][0]
                if len(queue) > 1 and abs(queue[1][0] - pivot) <= abs(head - pivot):
                    queue.popleft()             # a newer frame of this input is closer
                    self._superseded[index] += 1
                elif head < pivot - self.slop_ns:
                    if len(queue) == 1:         # its successor decides: superseded or not
                        waiting = True
                        continue
                    queue.popleft()
                    self._count(index, 'unmatched', (
                        f'frame stamped {head} ns is more than slop {_s(self.slop_ns)} older '
                        f'than the other inputs\' {pivot} ns and its successor is no closer'))
                else:
                    continue
                dropped = True
                break  # the pivot may have changed: look again
            if dropped:
                continue
            if waiting:
                break
            heads = [q.popleft() for q in self._queues]
            sets.append(SyncedSet(tuple(t for t, _ in heads), tuple(x for _, x in heads)))
        return sets
