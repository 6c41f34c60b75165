"""The depth node survives bad input: robust_publisher.py sends every bad case (wrong
encoding, step/size mismatch, truncated data, zero-size image, corrupt and truncated JPEG,
NaN CameraInfo, duplicated and out-of-order stamps, a camera that stops, a late camera) between
good sets. The node must stay up, count each cause in /diagnostics, log each cause once
(throttled), and still publish every good set. Also: a bad parameter stops it at start-up.
"""
import subprocess
import sys

from node_harness import ROOT, Recording, ros_env, run_helper, start_node, stop, write_params

T0_NS = 1_700_000_000 * 10**9


def test_bad_messages_are_counted_and_the_node_keeps_working(tmp_path, request, da3_small_dir):
    params = {'cameras': ['/rob_a', '/rob_b'], 'image_transport': ['raw', 'compressed'],
              'model': da3_small_dir, 'device': 'cpu', 'process_res': 56,
              'sync.slop_s': 0.01, 'sync.max_wait_s': 0.5, 'sync.queue_size': 5,
              'qos.reliable_inputs': True, 'qos.reliable_outputs': True,
              'diagnostics_period_s': 0.05, 'log_throttle_s': 60.0}
    env = ros_env(request.node.nodeid)
    log = tmp_path / 'node.log'
    node = start_node(write_params(tmp_path / 'params.yaml', params), env, log)
    try:
        run_helper('robust_publisher.py', ['--out', str(tmp_path / 'rec')], env, node, log)
        assert node.poll() is None, log.read_text()
    finally:
        stop(node)
    rec = Recording(tmp_path / 'rec')
    stamps = [(r.header.stamp.sec * 10**9 + r.header.stamp.nanosec - T0_NS) / 1e9
              for r in rec.outputs['/da3/rig_depth']]
    assert stamps == [1.0, 2.0, 3.6, 5.0]
    d = rec.diagnostics
    expected = {
        'drops.rob_a.unsupported_encoding': '1', 'drops.rob_a.bad_step': '1',
        'drops.rob_a.size_mismatch': '1', 'drops.rob_a.truncated': '1',
        'drops.rob_a.empty_image': '1', 'drops.rob_a.nan_intrinsics': '1',
        'drops.rob_b.corrupt_compressed': '1', 'drops.rob_b.truncated': '1',
        'drops.truncated': '2', 'drops.duplicate': '1', 'drops.out_of_order': '1',
        # rob_b silent: rob_a's 3.0, 3.2 (then 3.8 when 5.0 comes) outlive max_wait;
        # the 3.4 of rob_a can never pair; the late 3.45 of rob_b, replaced by its closer 3.6,
        # is superseded (not a drop)
        'drops.stale_partial': '3', 'drops.rob_a.stale_partial': '3',
        'drops.unmatched': '1', 'drops.rob_a.unmatched': '1', 'superseded.rob_b': '1',
        'drops.rob_a.duplicate': '1', 'drops.rob_a.out_of_order': '1',
        'sets_processed': '4', 'sets_synced': '4', 'rob_a.images': '15', 'rob_b.images': '7',
    }
    assert {k: d.get(k) for k in expected} == expected
    text = log.read_text()
    assert text.count('dropped (truncated)') == 1  # two drops, one line per throttle period
    for cause in ('unsupported_encoding', 'bad_step', 'corrupt_compressed', 'duplicate',
                  'out_of_order', 'nan_intrinsics', 'stale_partial', 'unmatched'):
        assert f'dropped ({cause})' in text, cause


def run_node_expecting_failure(tmp_path, request, params: dict, *extra: str) -> str:
    env = ros_env(request.node.nodeid)
    args = ['--ros-args', '--params-file', str(write_params(tmp_path / 'p.yaml', params)),
            *extra]
    done = subprocess.run([sys.executable, '-m', 'da3_ros.nodes.depth_node', *args], env=env,
                          cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 2, done
    return (done.stdout + done.stderr).decode()


def test_bad_parameters_stop_the_node_with_their_name(tmp_path, request):
    cams = {'cameras': ['/a', '/b'], 'device': 'cpu'}
    out = run_node_expecting_failure(tmp_path, request, cams, '-p', 'sync.slop_s:=-0.5')
    assert "parameter 'sync.slop_s'" in out, out
    out = run_node_expecting_failure(tmp_path, request, {**cams,
                                                         'metric_mode': 'rig_calibration'})
    assert "parameter 'rig.source'" in out and 'tf' in out, out
    out = run_node_expecting_failure(tmp_path, request, {'device': 'cpu'})
    assert "parameter 'cameras': must be set" in out, out
    out = run_node_expecting_failure(tmp_path, request, {**cams,
                                                         'model': str(tmp_path / 'nothing')})
    assert "parameter 'model'" in out, out
