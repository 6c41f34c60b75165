"""What a robot sees of the depth node, computed from the end-to-end harness's records.

Pure functions over plain data (no rclpy, no torch), so the accounting is tested on the CPU
(test/bench/test_e2e_metrics.py) and the GPU run only produces records:

- published: the publisher's schedule, one segment per rate:
      {'warmup': [stamp_ns, ...], 'segments': [{'rate_hz', 'start_ns', 'end_ns',
       'settle_ns', 'stamps': [stamp_ns, ...], 'late': n}, ...]}
  Every camera of a set carries the set's stamp (the wall clock when the set was sent).
- received: the subscriber's log, {topic: [[stamp_ns, receipt_ns, bytes], ...]} plus
  'diagnostics': [[receipt_ns, {key: value}], ...] (the node's /diagnostics KeyValues).
- cpu: [[wall_ns, cpu_seconds], ...] of the node process (user + system time).

Clocks: stamps and receipts are both time.time_ns() on one machine, so receipt - stamp is the
latency from the moment the set was sent to the moment the subscriber had the message.
"""
from __future__ import annotations

import numpy as np

# Output groups whose latency is reported: a set's latency for a group is the receipt of the
# last message of the group for that stamp (the whole rig's depth, every camera's cloud, ...).
GROUPS = ('depth', 'cloud', 'fused_cloud')


def output_topics(cameras: list[str], namespace: str = 'da3') -> dict[str, list[str]]:
    """Group -> topics of the node's default outputs for cameras named /<name>."""
    return {'depth': [f'/{c}/{namespace}/depth' for c in cameras],
            'confidence': [f'/{c}/{namespace}/confidence' for c in cameras],
            'camera_info': [f'/{c}/{namespace}/camera_info' for c in cameras],
            'cloud': [f'/{c}/{namespace}/points' for c in cameras],
            'fused_cloud': [f'/{namespace}/points'],
            'rig_depth': [f'/{namespace}/rig_depth']}


def receipts_by_stamp(received: dict, topics: list[str]) -> dict[int, float]:
    """stamp -> the latest receipt (ns) over `topics`, for stamps that reached every topic."""
    latest: dict[int, int] = {}
    seen: dict[int, int] = {}
    for topic in topics:
        for stamp, receipt, _ in {int(r[0]): r for r in received.get(topic, [])}.values():
            seen[stamp] = seen.get(stamp, 0) + 1
            latest[stamp] = max(latest.get(stamp, 0), receipt)
    return {s: latest[s] for s, n in seen.items() if n == len(topics)}


def percentiles_ms(values_ns: list[float]) -> dict[str, float | None]:
    """Median and 99th percentile (linear interpolation) in milliseconds; None when empty."""
    if not values_ns:
        return {'median_ms': None, 'p99_ms': None, 'max_ms': None}
    v = np.asarray(values_ns, np.float64) / 1e6
    return {'median_ms': float(np.median(v)), 'p99_ms': float(np.percentile(v, 99)),
            'max_ms': float(v.max())}


def diagnostics_at(diagnostics: list, t_ns: int) -> dict[str, str]:
    """The last /diagnostics values received at or before t_ns ({} when none yet)."""
    last = {}
    for receipt, values in diagnostics:
        if receipt > t_ns:
            break
        last = values
    return last


def counter_delta(before: dict, after: dict, prefix: str) -> dict[str, int]:
    """after - before of the integer counters whose key starts with prefix (missing = 0)."""
    keys = {k for k in after if k.startswith(prefix)} | {k for k in before if k.startswith(prefix)}
    out = {}
    for key in sorted(keys):
        delta = int(float(after.get(key, 0))) - int(float(before.get(key, 0)))
        if delta:
            out[key[len(prefix):]] = delta
    return out


def cpu_percent(cpu: list, start_ns: int, end_ns: int) -> float | None:
    """The node's CPU use between two wall times, in % of one core (100 = one core busy),
    from the first sample at or after start_ns to the last at or before end_ns."""
    inside = [s for s in cpu if start_ns <= s[0] <= end_ns]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return 100.0 * (c1 - c0) / ((t1 - t0) / 1e9)


def stage_means(values: dict[str, str]) -> dict[str, float]:
    """{stage: mean ms} from the node's 'latency_ms.<stage>.mean' diagnostics."""
    return {k[len('latency_ms.'):-len('.mean')]: float(v) for k, v in values.items()
            if k.startswith('latency_ms.') and k.endswith('.mean')}


def segment_report(segment: dict, received: dict, topics: dict[str, list[str]],
                   cpu: list | None = None) -> dict:
    """One rate segment: rates, set accounting, drops by cause, latencies, stages, CPU, GPU.

    A set counts as complete when every topic of every group in `topics` received its stamp.
    Counters come from the node's /diagnostics: the last report before the segment started
    and the last one before the next segment (end_ns + settle_ns), so sets still in flight at
    the end are counted.
    """
    stamps = [int(s) for s in segment['stamps']]
    start, end = int(segment['start_ns']), int(segment['end_ns'])
    settle_end = end + int(segment.get('settle_ns', 0))
    # sets are sent at start + k / rate, k < n: the segment covers n periods
    duration_s = (end - start) / 1e9 + 1.0 / segment['rate_hz']
    all_topics = [t for group in topics.values() for t in group]
    complete = receipts_by_stamp(received, all_topics)
    complete_sets = sum(s in complete for s in stamps)
    report = {
        'rate_hz': segment['rate_hz'], 'duration_s': duration_s,
        'sets_published': len(stamps), 'publisher_late': segment.get('late', 0),
        'published_rate_hz': len(stamps) / duration_s if duration_s > 0 else 0.0,
        'complete_sets_received': complete_sets,
        'output_rate_hz': complete_sets / duration_s if duration_s > 0 else 0.0,
    }
    for group in GROUPS:
        if group in topics:
            done = receipts_by_stamp(received, topics[group])
            report[f'latency_{group}'] = percentiles_ms([done[s] - s for s in stamps
                                                         if s in done])
    diagnostics = received.get('diagnostics', [])
    before, after = diagnostics_at(diagnostics, start), diagnostics_at(diagnostics, settle_end)
    report['node_sets_synced'] = counter_delta(before, after, 'sets_synced').get('', 0)
    report['node_sets_processed'] = counter_delta(before, after, 'sets_processed').get('', 0)
    report['node_images_received'] = sum(
        int(float(after.get(k, 0))) - int(float(before.get(k, 0)))
        for k in after if k.endswith('.images'))
    report['drops'] = {k: v for k, v in counter_delta(before, after, 'drops.').items()
                       if k.count('.') == 0}            # totals; per-source keys have a dot
    report['drops_by_source'] = {k: v for k, v in counter_delta(before, after, 'drops.').items()
                                 if k.count('.') == 1}
    report['stages_ms'] = stage_means(diagnostics_at(diagnostics, end))
    gpu = [float(v[key]) for t, v in diagnostics if start <= t <= settle_end
           for key in ('gpu.max_allocated_mb',) if key in v]
    report['gpu_max_allocated_mb'] = max(gpu) if gpu else None
    reserved = [float(v['gpu.reserved_mb']) for t, v in diagnostics
                if start <= t <= settle_end and 'gpu.reserved_mb' in v]
    report['gpu_reserved_mb'] = max(reserved) if reserved else None
    report['cpu_percent'] = cpu_percent(cpu or [], start, end)
    return report


def first_set_ms(published: dict, received: dict, topics: list[str]) -> float | None:
    """From sending the first warm-up set to receiving all its `topics` (includes the
    compilation of the network on the first call), in ms."""
    if not published.get('warmup'):
        return None
    first = int(published['warmup'][0])
    done = receipts_by_stamp(received, topics)
    return (done[first] - first) / 1e6 if first in done else None


def run_report(published: dict, received: dict, topics: dict[str, list[str]],
               cpu: list | None = None) -> dict:
    """Every segment's report, and the first-set time over the depth topics."""
    return {'first_set_ms': first_set_ms(published, received, topics['depth']),
            'segments': [segment_report(s, received, topics, cpu)
                         for s in published['segments']]}


def chunk_windows(status: list) -> list[tuple[int, int]]:
    """[(start_ns, end_ns)] of each processed chunk, from the SLAM node's ~/status log
    [[receipt_ns, chunks, chunk_latency_ms], ...]: a report whose chunk count rose ends a chunk
    that took chunk_latency_ms."""
    windows, chunks = [], 0
    for receipt, count, latency_ms in status:
        if count > chunks:
            windows.append((int(receipt - latency_ms * 1e6), int(receipt)))
            chunks = count
    return windows


def cadence(times_ns: list[int], windows: list[tuple[int, int]]) -> dict:
    """How regularly something kept arriving: overall rate and largest gap, and the same
    inside the windows (what a chunk's processing does to it)."""
    t = np.sort(np.asarray(times_ns, np.int64))
    out = {'count': int(t.size), 'rate_hz': None, 'max_gap_ms': None,
           'in_chunks_count': 0, 'in_chunks_rate_hz': None, 'max_gap_in_chunks_ms': None}
    if t.size >= 2:
        out['rate_hz'] = float((t.size - 1) / ((t[-1] - t[0]) / 1e9))
        out['max_gap_ms'] = float(np.diff(t).max() / 1e6)
    inside, span_ns, gaps = 0, 0, []
    # only chunks after the first arrival: before it there was nothing to publish yet (the
    # SLAM node's map TF exists once its first chunk is done)
    for start, end in (w for w in windows if t.size and w[0] >= t[0]):
        within = t[(t >= start) & (t <= end)]
        inside += within.size
        span_ns += end - start
        # the gap from the last arrival before the window to the first after it, capped by
        # the window: the longest silence a listener saw while this chunk ran
        edges = np.concatenate([t[t < start][-1:], within, t[t > end][:1]])
        if edges.size >= 2:
            gaps.append(float(np.diff(edges).max() / 1e6))
    out['in_chunks_count'] = inside
    if span_ns > 0:
        out['in_chunks_rate_hz'] = inside / (span_ns / 1e9)
    out['max_gap_in_chunks_ms'] = max(gaps) if gaps else None
    return out


def slam_report(received: dict) -> dict:
    """Chunks processed, chunk time (median / max), and the cadence of the map TF and of
    /diagnostics overall and while chunks were processed."""
    windows = chunk_windows(received.get('slam_status', []))
    return {'chunks': len(windows),
            'chunk_ms': percentiles_ms([end - start for start, end in windows]),
            'chunk_ms_each': [(end - start) / 1e6 for start, end in windows],
            'tf': cadence([r[1] for r in received.get('slam_tf', [])], windows),
            'diagnostics': cadence([r[0] for r in received.get('diagnostics', [])], windows)}
