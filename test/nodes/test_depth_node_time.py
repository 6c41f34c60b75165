"""Stamp time and normal rig behaviour in the real depth node (time_publisher.py scenarios):
one frame stamped 1 h ahead and a bag loop (all cameras jump back) must not stop the sets; a
camera three times faster than the other is normal (superseded frames, drops status OK); so is
an uncalibrated CameraInfo (K all zeros) in relative mode.
"""
from node_harness import Recording, ros_env, run_helper, start_node, stop, write_params

T0_NS = 1_700_000_000 * 10**9
DROPS = 'da3_depth: drops'


def run_scenario(tmp_path, request, da3_small_dir, scenario: str) -> tuple[Recording, str]:
    params = {'cameras': ['/tj_a', '/tj_b'], 'model': da3_small_dir, 'device': 'cpu',
              'process_res': 56, 'sync.slop_s': 0.01, 'sync.max_wait_s': 0.5,
              'qos.reliable_inputs': True, 'qos.reliable_outputs': True,
              'diagnostics_period_s': 0.05, 'log_throttle_s': 60.0}
    env = ros_env(request.node.nodeid)
    log = tmp_path / 'node.log'
    node = start_node(write_params(tmp_path / 'params.yaml', params), env, log)
    try:
        run_helper('time_publisher.py', ['--scenario', scenario, '--out', str(tmp_path / 'rec')],
                   env, node, log)
        assert node.poll() is None, log.read_text()
    finally:
        stop(node)
    return Recording(tmp_path / 'rec'), log.read_text()


def set_stamps(rec: Recording) -> list[float]:
    return [round((r.header.stamp.sec * 10**9 + r.header.stamp.nanosec - T0_NS) / 1e9, 6)
            for r in rec.outputs['/da3/rig_depth']]


def jump_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if 'time jump' in line]


def test_one_frame_stamped_an_hour_ahead_does_not_stop_the_sets(tmp_path, request,
                                                                 da3_small_dir):
    rec, log = run_scenario(tmp_path, request, da3_small_dir, 'jump_ahead')
    assert set_stamps(rec) == [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]  # the next set right after it
    d = rec.diagnostics
    assert (d.get('drops.tj_a.time_jump'), d.get('sync.time_jumps'), d.get('sync.resets')) == (
        '1', '1', '0'), d  # the bad frame alone was dropped: nothing else was lost
    assert not any(k.endswith(('stale_partial', 'out_of_order')) for k in d), d
    lines = jump_lines(log)
    assert len(lines) == 1 and 'tj_a' in lines[0] and '+3600.100 s' in lines[0], log


def test_a_bag_loop_resets_the_synchroniser_and_the_sets_go_on(tmp_path, request,
                                                                da3_small_dir):
    rec, log = run_scenario(tmp_path, request, da3_small_dir, 'loop')
    assert set_stamps(rec) == [10.0, 10.1, 10.2, 0.0, 0.1, 0.2]
    d = rec.diagnostics
    assert (d.get('sync.time_jumps'), d.get('sync.resets')) == ('1', '1'), d
    assert not any(k.startswith('drops.') for k in d), d  # nothing was waiting: no frame lost
    lines = jump_lines(log)
    assert len(lines) == 1 and 'tj_a' in lines[0] and '-10.200 s' in lines[0], log
    assert 'synchroniser reset' in lines[0], log


def test_a_faster_camera_is_normal_superseded_frames_at_ok_level(tmp_path, request,
                                                                  da3_small_dir):
    rec, _ = run_scenario(tmp_path, request, da3_small_dir, 'fast')
    assert set_stamps(rec) == [1.0, 1.1, 1.2, 1.3]
    d = rec.diagnostics
    assert (d.get('superseded'), d.get('superseded.tj_a')) == ('6', '6'), d  # 2 per period
    assert not any(k.startswith('drops.') for k in d), d
    assert rec.levels[DROPS] == 0, rec.levels  # never WARN


def test_relative_mode_accepts_an_uncalibrated_camera_info(tmp_path, request, da3_small_dir):
    rec, log = run_scenario(tmp_path, request, da3_small_dir, 'uncalibrated')
    assert set_stamps(rec) == [1.0, 1.1, 1.2]
    d = rec.diagnostics
    assert d.get('tj_a.camera_info') == '1' and d.get('tj_b.camera_info') == '1', d
    assert not any(k.startswith('drops.') for k in d), d
    assert d.get('camera_info.ready') == 'true' and rec.levels[DROPS] == 0, (d, rec.levels)
    assert 'uncalibrated' not in log, log
