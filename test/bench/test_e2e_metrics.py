"""The end-to-end harness's accounting (bench/e2e_metrics.py) on records with known answers,
and one small real run of the whole harness on the CPU (real node, publisher and recorder
processes over DDS). Nothing here asserts a time: the GPU numbers come from the same code
run by hand on the GPU machine (docs/gpu_node_benchmarks.md)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'bench'))
import e2e_metrics as m  # noqa: E402

MS = 1_000_000
CAMS = ['A', 'B']


def records():
    """10 sets at 10 Hz from t = 1 s; set k's depth arrives (20 + k) ms after its stamp on
    camera A and (30 + k) ms on B, except set 9 whose B depth is lost; clouds 5 ms later."""
    start = 1_000 * MS
    stamps = [start + k * 100 * MS for k in range(10)]
    topics = m.output_topics(CAMS)
    received = {t: [] for group in topics.values() for t in group}
    for k, s in enumerate(stamps):
        for cam, extra_ms in (('A', 20), ('B', 30)):
            if cam == 'B' and k == 9:
                continue
            for group, delay_ms in (('depth', 0), ('confidence', 0), ('camera_info', 0),
                                    ('cloud', 5)):
                topic = next(t for t in topics[group] if t.startswith(f'/{cam}/'))
                received[topic].append([s, s + (extra_ms + k + delay_ms) * MS, 100])
        for group in ('fused_cloud', 'rig_depth'):
            received[topics[group][0]].append([s, s + (40 + k) * MS, 100])
    received['diagnostics'] = [
        [start - 10 * MS, {'sets_synced': '3', 'sets_processed': '3', 'drops.busy': '1',
                           'drops.rig.busy': '1', 'A.images': '6', 'B.images': '6'}],
        [start + 1100 * MS, {'sets_synced': '13', 'sets_processed': '11', 'drops.busy': '2',
                             'drops.rig.busy': '2', 'drops.stale_partial': '1',
                             'A.images': '16', 'B.images': '15',
                             'latency_ms.network.mean': '12.5', 'gpu.max_allocated_mb': '900.0',
                             'gpu.reserved_mb': '1024.0'}],
        [start + 5000 * MS, {'sets_synced': '99', 'sets_processed': '99'}],   # after: ignored
    ]
    segment = {'rate_hz': 10.0, 'start_ns': start, 'end_ns': start + 900 * MS,   # last send
               'settle_ns': 500 * MS, 'stamps': stamps, 'late': 0}
    cpu = [[start, 5.0], [start + 450 * MS, 5.3], [start + 900 * MS, 5.45],
           [start + 3000 * MS, 9.0]]
    return segment, received, topics, cpu


def test_segment_report_counts_rates_latencies_and_drops():
    segment, received, topics, cpu = records()
    r = m.segment_report(segment, received, topics, cpu)
    assert r['sets_published'] == 10 and r['duration_s'] == pytest.approx(1.0)
    assert r['complete_sets_received'] == 9                  # set 9 lost B's outputs
    assert r['output_rate_hz'] == pytest.approx(9.0)
    # depth: the slower camera decides, (30 + k) ms for k = 0..8
    depth = r['latency_depth']
    assert depth['median_ms'] == pytest.approx(34.0)
    assert depth['p99_ms'] == pytest.approx(37.92)           # 30..38, linear
    assert depth['max_ms'] == pytest.approx(38.0)
    assert r['latency_cloud']['median_ms'] == pytest.approx(39.0)
    assert r['latency_fused_cloud']['median_ms'] == pytest.approx(44.5)   # all 10 sets
    assert r['node_sets_synced'] == 10 and r['node_sets_processed'] == 8
    assert r['drops'] == {'busy': 1, 'stale_partial': 1}
    assert r['drops_by_source'] == {'rig.busy': 1}
    assert r['node_images_received'] == 19
    assert r['stages_ms'] == {}            # no report inside the segment carried stages
    assert r['gpu_max_allocated_mb'] == 900.0 and r['gpu_reserved_mb'] == 1024.0
    assert r['cpu_percent'] == pytest.approx(50.0)           # 0.45 CPU-s in 0.9 s


def test_percentiles_and_empty_groups():
    p = m.percentiles_ms([k * MS for k in range(1, 101)])
    assert p['median_ms'] == pytest.approx(50.5) and p['p99_ms'] == pytest.approx(99.01)
    assert m.percentiles_ms([]) == {'median_ms': None, 'p99_ms': None, 'max_ms': None}
    assert m.cpu_percent([[0, 1.0]], 0, 10) is None


def test_first_set_and_duplicates():
    segment, received, topics, _ = records()
    published = {'warmup': [segment['stamps'][0]], 'segments': [segment]}
    assert m.first_set_ms(published, received, topics['depth']) == pytest.approx(30.0)
    # a duplicated message (same stamp twice on one topic) is one receipt, not a second camera
    dup = {'/A/da3/depth': [[1, 5, 1], [1, 6, 1]], '/B/da3/depth': []}
    assert m.receipts_by_stamp(dup, ['/A/da3/depth', '/B/da3/depth']) == {}


def test_the_harness_end_to_end_on_the_cpu(tmp_path):
    """bench/gpu_node_e2e.py on the CPU: a real depth node, publisher and recorder; every set
    is accounted for and the report is complete."""
    out = tmp_path / 'e2e'
    done = subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'gpu_node_e2e.py'), '--device', 'cpu',
         '--models', 'da3-small', '--process-res', '56', '--inputs', 'raw', '--segments',
         '2:3', '--gap-s', '3', '--out', str(out), '--checkpoints', str(tmp_path / 'ckpt'),
         '--domain', '219'], capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [report] = json.loads((out / 'e2e_summary.json').read_text())
    assert report['node_exit'] == 0 and report['first_set_ms'] > 0
    [seg] = report['segments']
    assert seg['sets_published'] == 6
    # every set the node synchronised was processed or dropped with a cause
    assert seg['node_sets_synced'] == seg['node_sets_processed'] + sum(seg['drops'].values())
    assert 0 < seg['complete_sets_received'] <= seg['node_sets_processed']
    assert seg['node_sets_synced'] <= seg['sets_published']
    assert seg['node_images_received'] <= 6 * seg['sets_published']
    for group in ('depth', 'cloud', 'fused_cloud'):
        lat = seg[f'latency_{group}']
        assert 0 < lat['median_ms'] <= lat['p99_ms'] <= lat['max_ms']
    assert {'convert', 'sync', 'network', 'messages', 'publish', 'total'} <= set(
        seg['stages_ms'])
    assert seg['cpu_percent'] > 0


def test_slam_chunk_windows_and_cadence():
    """Chunks from ~/status; a 10 Hz TF that stops for 400 ms inside the second chunk."""
    S = 1_000_000_000
    status = [[2 * S, 1, 500.0], [2 * S + 10, 1, 500.0], [5 * S, 2, 1000.0]]
    windows = m.chunk_windows(status)
    assert windows == [(int(1.5 * S), 2 * S), (4 * S, 5 * S)]
    tf = [k * S // 10 for k in range(16, 60) if not 42 <= k <= 45]     # silent 4.2..4.5 s
    c = m.cadence(tf, windows)
    assert c['max_gap_ms'] == pytest.approx(500.0)
    assert c['max_gap_in_chunks_ms'] == pytest.approx(500.0)
    assert c['in_chunks_count'] == 7      # 4.0, 4.1, 4.6 ... 5.0 (the first chunk predates TF)
    assert c['in_chunks_rate_hz'] == pytest.approx(7.0)
    report = m.slam_report({'slam_status': status, 'slam_tf': [[t, t, 'x'] for t in tf],
                            'diagnostics': [[k * S // 2, {}] for k in range(12)]})
    assert report['chunks'] == 2 and report['chunk_ms_each'] == [500.0, 1000.0]
    assert report['diagnostics']['max_gap_in_chunks_ms'] == pytest.approx(500.0)


def test_the_slam_harness_on_the_cpu_and_diagnostics_during_chunks(tmp_path):
    """bench/gpu_node_e2e.py --slam on the CPU: the real SLAM node processes chunks of the
    replayed rig, and /diagnostics keeps arriving while a chunk is processed (reporting
    'processing_chunk'; before the fix it went silent for the whole chunk), and the map TF
    arrives once there is a map."""
    out = tmp_path / 'e2e'
    done = subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'gpu_node_e2e.py'), '--device', 'cpu',
         '--models', '--slam', 'da3-small', '--process-res', '56', '--slam-segment', '4:15',
         '--slam-chunk', '6', '2', '--out', str(out), '--checkpoints', str(tmp_path / 'ckpt'),
         '--domain', '221'], capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [report] = json.loads((out / 'e2e_summary.json').read_text())
    assert report['node_exit'] == 0 and report['chunks'] >= 2
    assert report['diagnostics']['in_chunks_count'] > 0
    assert report['tf']['count'] > 0
    received = json.loads((out / 'slam_da3-small_raw' / 'received.json').read_text())
    states = {values.get('state') for _, values in received['diagnostics']}
    assert 'processing_chunk' in states
