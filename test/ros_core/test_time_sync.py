"""ApproximateTimeSync on explicit stamp scenarios: equal and different rates, a camera that
stops and resumes, a late camera, duplicates, out-of-order stamps, overflow, a closer successor."""

import heapq

import pytest

from da3_ros.errors import ConfigError
from da3_ros.ros.errors import SyncError
from da3_ros.ros.time_sync import ApproximateTimeSync, SyncedSet, stamp_to_ns

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
    assert sync.drops == {'unmatched': 58} and sync.pending() == [2, 0]  # 2933, 2967 ms wait


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
    # of the 4 left over, 1600 and 1700 ms went stale, 1800 and 1900 ms were skipped
    assert sync.drops == {'stale_partial': 8, 'unmatched': 2}


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
    assert sync.drops == {'stale_partial': 4, 'unmatched': 1}  # stamp 0 arrived stale
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
    assert sync.drops == {'unmatched': 1}


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


@pytest.mark.parametrize('args', [(0, 5), (2, -1), (2, 5, 0), (2, 5, 10, 4)])
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
