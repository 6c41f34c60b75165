"""ApproximateTimeSync on explicit stamp scenarios: equal and different rates, a camera that
stops and resumes, a late camera, duplicates, out-of-order stamps, overflow, a closer successor,
superseded vs unmatched frames, per-input counters, time jumps (one bad stamp, a bag loop)."""

import heapq

import pytest

from da3_ros.errors import ConfigError
from da3_ros.ros.errors import SyncError
from da3_ros.ros.time_sync import ApproximateTimeSync, SyncCounts, SyncedSet, stamp_to_ns

MS = 1_000_000  # ns per millisecond


def feed(sync: ApproximateTimeSync, arrivals: list[tuple[int, int]]) -> list[SyncedSet]:
    """arrivals: (input index, stamp ns) in arrival order; item = (index, stamp)."""
    sets = []
    for index, stamp in arrivals:
        sets += sync.add(index, stamp, (index, stamp))
    return sets


def stream(index: int, period_ms: float, count: int, offset_ms: float = 0.0) -> list:
    return [(index, round((offset_ms + k * period_ms) * MS)) for k in range(count)]


def by_stamp(*streams: list) -> list:
    """Merge streams into arrival order = stamp order (ties: lower input first)."""
    return list(heapq.merge(*streams, key=lambda a: (a[1], a[0])))


def test_equal_rates_three_cameras_jittered():
    sync = ApproximateTimeSync(3, slop_ns=10 * MS)
    arrivals = by_stamp(stream(0, 100, 20), stream(1, 100, 20, 3), stream(2, 100, 20, -4 + 8))
    sets = feed(sync, arrivals)
    assert len(sets) == 20
    for k, s in enumerate(sets):
        assert s.stamps_ns == (k * 100 * MS, (k * 100 + 3) * MS, (k * 100 + 4) * MS)
        assert s.items[1] == (1, s.stamps_ns[1])
        assert s.stamp_ns == max(s.stamps_ns)
    assert sync.drops == {} and sync.pending() == [0, 0, 0]


def test_thirty_and_ten_hertz_pair_at_the_slow_rate():
    sync = ApproximateTimeSync(2, slop_ns=5 * MS)
    fast, slow = stream(0, 100 / 3, 90), stream(1, 100, 30, 1)
    sets = feed(sync, by_stamp(fast, slow))
    assert [s.stamps_ns[1] for s in sets] == [(100 * k + 1) * MS for k in range(30)]
    assert [s.stamps_ns[0] for s in sets] == [fast[3 * k][1] for k in range(30)]
    # the fast camera's other frames were superseded by closer ones: normal, not drops
    assert sync.drops == {} and sync.pending() == [2, 0]  # 2933, 2967 ms wait
    assert sync.counts().superseded == (58, 0)


def test_camera_stops_then_resumes():
    sync = ApproximateTimeSync(2, slop_ns=10 * MS, queue_size=100, max_wait_ns=300 * MS)
    before = feed(sync, by_stamp(stream(0, 100, 10), stream(1, 100, 10)))
    during = feed(sync, stream(0, 100, 10, 1000))  # camera 1 silent for 1 s
    assert (len(before), during) == (10, [])
    # 1000..1500 ms are > 300 ms older than the newest stamp 1900 ms; 1600..1900 still wait
    assert sync.drops == {'stale_partial': 6} and sync.pending() == [4, 0]
    after = feed(sync, by_stamp(stream(0, 100, 5, 2000), stream(1, 100, 5, 2002)))
    assert [s.stamps_ns for s in after] == [((2000 + 100 * k) * MS, (2002 + 100 * k) * MS)
                                            for k in range(5)]
    # of the 4 left over, 1600 and 1700 ms went stale, 1800 and 1900 ms were superseded
    assert sync.drops == {'stale_partial': 8} and sync.counts().superseded == (2, 0)


def test_late_camera_within_max_wait_still_matches():
    sync = ApproximateTimeSync(3, slop_ns=5 * MS, max_wait_ns=500 * MS)
    on_time = by_stamp(stream(0, 100, 10), stream(1, 100, 10, 1))
    late = stream(2, 100, 10, 2)  # frame k arrives after frame k + 3 of the others
    arrivals = []
    for k in range(10):
        arrivals += on_time[2 * k: 2 * k + 2] + late[k - 3: k - 2] * (k >= 3)
    arrivals += late[7:]
    sets = feed(sync, arrivals)
    assert [s.stamps_ns for s in sets] == [
        (100 * k * MS, (100 * k + 1) * MS, (100 * k + 2) * MS) for k in range(10)]
    assert sync.drops == {}


def test_late_camera_beyond_max_wait_is_dropped_stale():
    sync = ApproximateTimeSync(2, slop_ns=5 * MS, max_wait_ns=200 * MS)
    feed(sync, stream(0, 100, 6))  # camera 0 at 0..500 ms
    assert sync.drops == {'stale_partial': 3}  # 0, 100, 200 ms waited too long
    sets = feed(sync, [(1, 0), (1, 400 * MS + 1)])
    assert sync.drops == {'stale_partial': 4}  # stamp 0 arrived stale
    assert sync.counts().superseded == (1, 0)   # 300 ms: 400 ms is closer to 401 ms
    assert [s.stamps_ns for s in sets] == [(400 * MS, 400 * MS + 1)]


def test_duplicate_and_out_of_order_raise_with_cause_and_are_counted():
    sync = ApproximateTimeSync(2, slop_ns=5 * MS)
    feed(sync, [(0, 100 * MS)])
    with pytest.raises(SyncError) as dup:
        sync.add(0, 100 * MS, 'again')
    assert dup.value.cause == 'duplicate'
    with pytest.raises(SyncError) as old:
        sync.add(0, 50 * MS, 'older')
    assert old.value.cause == 'out_of_order'
    assert sync.drops == {'duplicate': 1, 'out_of_order': 1}
    sets = feed(sync, [(1, 101 * MS)])  # the rejected messages were never queued
    assert [s.items for s in sets] == [((0, 100 * MS), (1, 101 * MS))]


def test_queue_overflow_drops_oldest():
    sync = ApproximateTimeSync(2, slop_ns=5 * MS, queue_size=3, max_wait_ns=10**12)
    feed(sync, stream(0, 100, 5))
    assert sync.drops == {'queue_overflow': 2} and sync.pending() == [3, 0]
    sets = feed(sync, [(1, 200 * MS)])
    assert [s.stamps_ns for s in sets] == [(200 * MS, 200 * MS)]


def test_a_closer_successor_replaces_the_head():
    sync = ApproximateTimeSync(2, slop_ns=20 * MS)
    sets = feed(sync, [(1, 85 * MS), (1, 101 * MS), (0, 100 * MS)])
    assert [s.stamps_ns for s in sets] == [(100 * MS, 101 * MS)]
    assert sync.drops == {} and sync.counts().superseded == (0, 1)



def test_a_waiting_head_of_a_faster_camera_is_superseded_not_unmatched():
    """tj_b's frame at a shared stamp arrives first: tj_a's previous frame is then older than
    the pivot with no successor yet; it waits for it, and is counted superseded."""
    sync = ApproximateTimeSync(2, slop_ns=5 * MS)
    arrivals = []
    for k in range(10):  # camera 0 at 30 Hz, camera 1 at 10 Hz, camera 1 sent first
        stamp = round(k * 100 / 3 * MS)
        arrivals += [(1, stamp)] * (k % 3 == 0) + [(0, stamp)]
    sets = feed(sync, arrivals)
    assert [s.stamps_ns[1] for s in sets] == [0, 100 * MS, 200 * MS, 300 * MS]
    assert sync.drops == {} and sync.counts().superseded == (6, 0)


def test_unmatched_only_when_the_successor_is_no_closer():
    sync = ApproximateTimeSync(2, slop_ns=10 * MS)
    feed(sync, [(0, 0), (1, 0)])
    feed(sync, [(0, 60 * MS), (1, 100 * MS)])
    assert sync.drops == {} and sync.pending() == [1, 1]   # 60 ms waits for its successor
    feed(sync, [(0, 160 * MS)])                            # no closer to 100 ms than 60 ms
    assert sync.counts().drops == {(0, 'unmatched'): 1} and sync.pending() == [1, 1]
    sets = feed(sync, [(1, 165 * MS)])                     # closer to 160 ms than 100 ms
    assert [s.stamps_ns for s in sets] == [(160 * MS, 165 * MS)]
    assert sync.counts() == SyncCounts({(0, 'unmatched'): 1}, (0, 1), 0, 0)
    assert [(e.cause, e.input) for e in sync.take_events()] == [('unmatched', 0)]


def test_counters_and_events_are_per_input():
    sync = ApproximateTimeSync(3, slop_ns=5 * MS, queue_size=2, max_wait_ns=200 * MS)
    feed(sync, [(0, 0), (1, 0), (2, 0), (1, 100 * MS), (1, 150 * MS), (1, 190 * MS)])
    with pytest.raises(SyncError):
        sync.add(2, 0, None)
    feed(sync, [(0, 400 * MS)])
    assert sync.counts().drops == {(1, 'queue_overflow'): 1, (2, 'duplicate'): 1,
                                   (1, 'stale_partial'): 2}
    assert sync.drops == {'queue_overflow': 1, 'duplicate': 1, 'stale_partial': 2}
    events = sync.take_events()
    assert [(e.cause, e.input) for e in events] == [
        ('queue_overflow', 1), ('stale_partial', 1), ('stale_partial', 1)]
    assert 'max_wait 0.200 s' in events[1].text and sync.take_events() == []


def two_cameras(start_ms: float, count: int, period_ms: float = 100.0) -> list:
    return by_stamp(stream(0, period_ms, count, start_ms), stream(1, period_ms, count,
                                                                 start_ms + 2))


def test_one_frame_stamped_an_hour_ahead_costs_that_frame_only():
    sync = ApproximateTimeSync(2, slop_ns=10 * MS, max_wait_ns=500 * MS,
                               max_jump_ns=5000 * MS)
    assert len(feed(sync, two_cameras(0, 10))) == 10
    assert feed(sync, [(0, (1000 + 3_600_000) * MS)]) == []   # held back, not the clock
    assert sync.pending() == [1, 0]
    after = feed(sync, two_cameras(1000, 5))                  # the very next set is made
    assert [s.stamps_ns[0] for s in after] == [(1000 + 100 * k) * MS for k in range(5)]
    assert sync.counts() == SyncCounts({(0, 'time_jump'): 1}, (0, 0), 1, 0)
    [event] = sync.take_events()
    assert (event.cause, event.input) == ('time_jump', 0)
    assert '+3600.098 s' in event.text and 'dropped as bad stamps' in event.text


def test_one_bad_stamp_backward_on_one_camera_is_dropped_alone():
    sync = ApproximateTimeSync(2, slop_ns=10 * MS, max_wait_ns=500 * MS,
                               max_jump_ns=5000 * MS)
    feed(sync, two_cameras(100_000, 3))
    feed(sync, [(1, 7 * MS)])                       # e.g. a stamp from before a clock sync
    after = feed(sync, two_cameras(100_300, 2))
    assert len(after) == 2 and sync.counts().drops == {(1, 'time_jump'): 1}


def test_a_bag_loop_resets_once_and_the_sets_go_on():
    sync = ApproximateTimeSync(2, slop_ns=10 * MS, max_wait_ns=500 * MS,
                               max_jump_ns=5000 * MS)
    assert len(feed(sync, two_cameras(0, 100))) == 100        # 0 .. 9.9 s
    feed(sync, [(0, 10_000 * MS)])                            # queued; 10 s of camera 1 never
    loop = feed(sync, two_cameras(0, 5))                      # both cameras start again at 0
    assert [s.stamps_ns for s in loop] == [(100 * k * MS, (100 * k + 2) * MS) for k in range(5)]
    # the queued 10 s frame was discarded by the reset; nothing was counted out of order
    assert sync.counts() == SyncCounts({(0, 'time_jump'): 1}, (0, 0), 1, 1)
    [event] = sync.take_events()
    assert event.input == 0 and '-10.000 s' in event.text
    assert 'synchroniser reset, 1 queued frame(s) discarded' in event.text


def test_all_cameras_jump_forward_reset_and_go_on():
    sync = ApproximateTimeSync(3, slop_ns=10 * MS, max_wait_ns=500 * MS,
                               max_jump_ns=2000 * MS)
    base = by_stamp(stream(0, 100, 3), stream(1, 100, 3), stream(2, 100, 3))
    later = by_stamp(stream(0, 100, 3, 60_000), stream(1, 100, 3, 60_000),
                     stream(2, 100, 3, 60_000))  # e.g. a sim clock that jumped a minute
    assert len(feed(sync, base)) == 3 and len(feed(sync, later)) == 3
    assert sync.counts().resets == 1 and sync.drops == {}


def test_a_faster_camera_alone_does_not_confirm_its_own_jump():
    """One camera sends several frames on a new timeline before the others: they wait for
    another camera to confirm (a bag loop) instead of resetting at once."""
    sync = ApproximateTimeSync(2, slop_ns=10 * MS, queue_size=3, max_wait_ns=500 * MS,
                               max_jump_ns=5000 * MS)
    feed(sync, two_cameras(20_000, 3))
    assert feed(sync, stream(0, 25, 5)) == []                 # 5 looped frames, 3 are kept
    assert sync.pending() == [3, 0] and sync.counts().resets == 0
    sets = feed(sync, [(1, 100 * MS)])                        # camera 1 loops too
    assert [s.stamps_ns for s in sets] == [(100 * MS, 100 * MS)]
    assert sync.counts() == SyncCounts({(0, 'time_jump'): 2}, (2, 0), 1, 1)


def test_a_single_camera_confirms_its_own_jump():
    sync = ApproximateTimeSync(1, slop_ns=0, max_wait_ns=500 * MS, max_jump_ns=5000 * MS)
    feed(sync, stream(0, 100, 100, 50_000))
    assert feed(sync, [(0, 0)]) == []                         # held: a loop or a bad stamp?
    assert [s.stamps_ns for s in feed(sync, [(0, 100 * MS)])] == [(0,), (100 * MS,)]
    assert sync.counts().resets == 1 and sync.drops == {}


def test_duplicates_after_a_jump_are_counted_not_lost():
    sync = ApproximateTimeSync(1, slop_ns=0, max_jump_ns=5000 * MS)
    feed(sync, [(0, 50_000 * MS)])
    feed(sync, [(0, 100 * MS)])
    assert feed(sync, [(0, 100 * MS)]) == [SyncedSet((100 * MS,), ((0, 100 * MS),))]
    assert sync.drops == {'duplicate': 1}
    assert [e.cause for e in sync.take_events()] == ['time_jump', 'duplicate']

def test_reset_forgets_queues_and_last_stamps():
    sync = ApproximateTimeSync(2, slop_ns=5 * MS)
    feed(sync, [(0, 500 * MS)])
    sync.reset()
    sets = feed(sync, [(0, 10 * MS), (1, 10 * MS)])  # a bag loop: earlier stamps are fine now
    assert len(sets) == 1 and sync.pending() == [0, 0]


def test_single_input_passes_through():
    sync = ApproximateTimeSync(1, slop_ns=0)
    assert [s.items for s in feed(sync, stream(0, 50, 3))] == [((0, 0),), ((0, 50 * MS),),
                                                               ((0, 100 * MS),)]


@pytest.mark.parametrize('args', [(0, 5), (2, -1), (2, 5, 0), (2, 5, 10, 4),
                                  (2, 5, 10, 100, 99)])
def test_bad_config_is_rejected(args):
    with pytest.raises(ConfigError):
        ApproximateTimeSync(*args)


def test_bad_index_is_a_programming_error():
    with pytest.raises(IndexError):
        ApproximateTimeSync(2, 5).add(2, 0, None)


def test_stamp_to_ns():
    class Stamp:
        sec, nanosec = 1_700_000_000, 123_456_789

    assert stamp_to_ns(Stamp) == 1_700_000_000_123_456_789
