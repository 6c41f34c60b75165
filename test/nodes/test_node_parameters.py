"""`ros2 param set` and params files on real node processes (issue 15 items 6 and 11).

A parameter read only at start-up is refused with a reason (declared read-only), never
"successful" and ignored; a live one (cloud.*, publish.*, sync.*, log_throttle_s; the slam
node's publish.*) is checked as at start-up and then applied to the running node, which the
outputs show. A misspelled key in a `--params-file` stops the node naming the key and the
closest parameter; the slam node's test-only parameters are not in the production node.
param_client.py calls the node's ~/set_parameters service (what `ros2 param set` calls).
"""
import json
import math
import subprocess
import sys

import yaml
from node_harness import ROOT, ros_env, run_helper, start_node, stop, write_params
from node_process import start_node as start_module

from da3_ros.sim.routes import city_grid
from da3_ros.slam.trajectory_io import write_tum

SIMULATED_SLAM_NODE = str(ROOT / 'test' / 'nodes' / 'simulated_slam_node.py')


def test_depth_node_refuses_start_up_parameters_and_applies_live_ones(tmp_path, request,
                                                                      da3_small_dir):
    params = {'cameras': ['/pa'], 'model': da3_small_dir, 'device': 'cpu', 'process_res': 56,
              'cloud.remove_sky': False, 'cloud.max_range_m': 1e6,
              'qos.reliable_inputs': True, 'qos.reliable_outputs': True,
              'diagnostics_period_s': 0.05}
    env, log = ros_env(request.node.nodeid), tmp_path / 'node.log'
    node = start_node(write_params(tmp_path / 'params.yaml', params), env, log)
    try:
        run_helper('param_client.py', ['--node', 'da3_depth', '--camera', 'pa', '--out',
                                       str(tmp_path / 'result.json')], env, node, log)
        assert node.poll() is None, log.read_text()
    finally:
        stop(node)
    r = json.loads((tmp_path / 'result.json').read_text())
    [read_only] = r['read_only']
    assert not read_only['successful'] and 'read-only' in read_only['reason'], read_only
    [out_of_range] = r['out_of_range']
    assert not out_of_range['successful'] and out_of_range['reason'], out_of_range
    [cross] = r['cross_check']   # same rule as at start-up (check_sync), reason names it
    assert not cross['successful'], cross
    assert cross['reason'].startswith("parameter 'sync.max_wait_s': 0.01 < sync.slop_s")
    assert all(s['successful'] for s in r['stride'] + r['toggle']), r
    first, strided, toggled = r['sets']
    h, w = first['depth_hw']
    assert first['cloud_width'] == h * w        # stride 1, nothing filtered
    assert strided['cloud_width'] == math.ceil(h / 4) * math.ceil(w / 4)   # cloud.stride 4
    # depth images received so far, colorized ones so far: publish.depth off, colorized on
    assert [s['depths'] for s in r['sets']] == [1, 2, 2]
    assert [s['colorized'] for s in r['sets']] == [0, 0, 1]
    text = log.read_text()
    assert 'parameters set: cloud.stride=4' in text, text
    assert 'Traceback' not in text, text


def test_slam_node_refuses_start_up_parameters_and_applies_live_ones(tmp_path, request):
    gt = city_grid(block_m=40.0)
    write_tum(tmp_path / 'gt.tum', gt.stamps_s, gt.T_world_cam)
    params = {'cameras': ['/ps'], 'test.simulated_trajectory': str(tmp_path / 'gt.tum'),
              'chunk.size': 2, 'chunk.overlap': 1, 'loops.enabled': False,
              'frames.odom': '', 'qos.reliable_inputs': True, 'publish.tf_period_s': 0.0,
              'diagnostics_period_s': 0.1}
    params_file, log = tmp_path / 'slam.yaml', tmp_path / 'slam.log'
    params_file.write_text(yaml.safe_dump({'da3_slam': {'ros__parameters': params}}))
    env = ros_env(request.node.nodeid)
    node = start_module(SIMULATED_SLAM_NODE, params_file, env, log)
    try:
        run_helper('param_client.py', ['--node', 'da3_slam', '--camera', 'ps', '--out',
                                       str(tmp_path / 'result.json')], env, node, log)
        assert node.poll() is None, log.read_text()
    finally:
        stop(node)
    r = json.loads((tmp_path / 'result.json').read_text())
    for key in ('read_only', 'test_param_read_only'):
        [result] = r[key]
        assert not result['successful'] and 'read-only' in result['reason'], result
    [cross] = r['cross_check']
    assert not cross['successful'] and "parameter 'sync.max_wait_s'" in cross['reason']
    assert r['tf_period'] == [{'successful': True, 'reason': ''}]
    assert r['tf_before'] == 0          # publish.tf_period_s 0: the chunk's TF only
    assert r['tf_after'] >= 5           # 0.05 s: republished with the current time


def run_expecting_failure(module: str, tmp_path, request, node_name: str,
                          params: dict) -> str:
    params_file = tmp_path / 'p.yaml'
    params_file.write_text(yaml.safe_dump({node_name: {'ros__parameters': params}}))
    target = [module] if module.endswith('.py') else ['-m', module]
    done = subprocess.run([sys.executable, *target, '--ros-args', '--params-file',
                           str(params_file)], env=ros_env(request.node.nodeid), cwd=ROOT,
                          capture_output=True, timeout=60)
    assert done.returncode == 2, done
    return (done.stdout + done.stderr).decode()


def test_a_misspelled_params_file_key_stops_the_node_naming_it(tmp_path, request):
    out = run_expecting_failure('da3_ros.nodes.depth_node', tmp_path, request, 'da3_depth',
                                {'cameras': ['/a'], 'device': 'cpu', 'sync.slop': 0.1})
    assert ("parameter 'sync.slop': is not a depth node parameter; did you mean "
            "'sync.slop_s'?") in out, out
    out = run_expecting_failure('da3_ros.nodes.slam_node', tmp_path, request, 'da3_slam',
                                {'cameras': ['/a'], 'device': 'cpu', 'chunk.sise': 10})
    assert "parameter 'chunk.sise': is not a slam node parameter; did you mean " \
           "'chunk.size'?" in out, out


def test_the_production_slam_node_has_no_test_parameters(tmp_path, request):
    """test.simulated_* and predictor are declared by the tests' simulated node only."""
    for key, value in (('test.simulated_seed', 3), ('predictor', 'simulated')):
        out = run_expecting_failure('da3_ros.nodes.slam_node', tmp_path, request, 'da3_slam',
                                    {'cameras': ['/a'], 'device': 'cpu', key: value})
        assert f"parameter '{key}': is not a slam node parameter" in out, out
