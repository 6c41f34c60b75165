"""The depth node as a real process (DA3-SMALL, random weights, CPU) with the shipped
nuScenes config: with rig.source yaml it latches the calibration on /tf_static (one message,
rig.base_frame -> each camera's frame id, values of the calibration file), which a subscriber
that joins later receives; with rig.source tf it reads TF and publishes nothing there."""
import json

import numpy as np
import pytest
import yaml
from node_harness import ROOT, ros_env, run_helper, start_node, stop, write_params
from transforms3d.quaternions import quat2mat

CONFIG = ROOT / 'config' / 'depth_nuscenes_6cam.yaml'
CALIBRATION = ROOT / 'config' / 'nuscenes_6cam_calibration.yaml'


def shipped_params(model_dir: str, **more) -> dict:
    params = yaml.safe_load(CONFIG.read_text())['da3_depth']['ros__parameters']
    return {**params, 'model': model_dir, 'device': 'cpu', 'precision': 'auto',
            'process_res': 140, 'qos.reliable_inputs': True, 'diagnostics_period_s': 0.2,
            'rig.calibration_file': str(CALIBRATION), **more}


def probe(tmp_path, test_name: str, params: dict, cameras: list, expect: str) -> dict:
    env = ros_env(test_name)
    log = tmp_path / 'node.log'
    node = start_node(write_params(tmp_path / 'params.yaml', params), env, log)
    out = tmp_path / 'probe.json'
    try:
        run_helper('tf_static_probe.py', ['--cameras', json.dumps(cameras), '--expect', expect,
                                          '--out', str(out)], env, node, log)
        assert node.poll() is None, log.read_text()
    finally:
        stop(node)
    return {**json.loads(out.read_text()), 'log': log.read_text()}


def test_calibration_file_rig_is_latched_on_tf_static(tmp_path, request, da3_small_dir):
    params = shipped_params(da3_small_dir)
    assert params['rig.source'] == 'yaml' and params['rig.base_frame'] == 'base_link'
    # frame ids unlike the camera names: the child frames are the frames the node stamps
    cameras = [[ns, f'{ns.strip("/").lower()}_optical'] for ns in params['cameras']]
    got = probe(tmp_path, request.node.nodeid, params, cameras, 'message')
    assert set(got['publishers']) == {'da3_depth'}
    [transforms] = got['messages']  # one message holding every camera
    calibration = yaml.safe_load(CALIBRATION.read_text())['cameras']
    assert [t[:2] for t in transforms] == [['base_link', frame] for _, frame in cameras]
    for (ns, _), (_, _, xyz, (x, y, z, w)) in zip(cameras, transforms, strict=True):
        T = np.array(calibration[ns.strip('/')]['T_base_camera'])
        np.testing.assert_allclose(xyz, T[:3, 3], atol=1e-12)
        np.testing.assert_allclose(quat2mat([w, x, y, z]), T[:3, :3], atol=1e-6)
    assert 'rig calibration on /tf_static: base_link -> ' in got['log']


@pytest.mark.parametrize('source', ['tf'])
def test_tf_rig_publishes_no_tf_static(tmp_path, request, da3_small_dir, source):
    params = shipped_params(da3_small_dir, **{'rig.source': source})
    cameras = [[ns, ns.strip('/')] for ns in params['cameras']]
    got = probe(tmp_path, request.node.nodeid, params, cameras, 'nothing')
    assert got['messages'] == []  # (with publish.tf its TfBroadcaster has an idle publisher)
    assert 'rig calibration on /tf_static' not in got['log']
