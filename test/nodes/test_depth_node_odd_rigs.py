"""Odd rigs in the real depth node (odd_rig_publisher.py scenarios): cameras of different
sizes and aspect ratios get one warning naming them and the processing size; a view below one
network patch is dropped as bad input; a mono16 camera works; distorted CameraInfo is warned
about once per camera, refused where a pinhole K is needed and not a polynomial model, and
copied into the published CameraInfo where its K was used; info_size_mismatch names the camera.
"""
import numpy as np
import yaml
from node_harness import Recording, ros_env, run_helper, start_node, stop, write_params

T0_NS = 1_700_000_000 * 10**9
D_A = [-0.1, 0.01, 0.001, -0.002, 0.0]


def run_scenario(tmp_path, request, da3_small_dir, scenario: str,
                 **extra) -> tuple[Recording, str]:
    params = {'cameras': ['/or_a', '/or_b'], 'model': da3_small_dir, 'device': 'cpu',
              'process_res': 56, 'sync.slop_s': 0.01, 'sync.max_wait_s': 0.5,
              'qos.reliable_inputs': True, 'qos.reliable_outputs': True,
              'diagnostics_period_s': 0.05, 'log_throttle_s': 60.0, **extra}
    env = ros_env(request.node.nodeid)
    log = tmp_path / 'node.log'
    node = start_node(write_params(tmp_path / 'params.yaml', params), env, log)
    try:
        run_helper('odd_rig_publisher.py', ['--scenario', scenario, '--out',
                                            str(tmp_path / 'rec')], env, node, log)
        assert node.poll() is None, log.read_text()
    finally:
        stop(node)
    return Recording(tmp_path / 'rec'), log.read_text()


def set_stamps(rec: Recording) -> list[float]:
    return [round((r.header.stamp.sec * 10**9 + r.header.stamp.nanosec - T0_NS) / 1e9, 6)
            for r in rec.outputs['/da3/rig_depth']]


def lines_with(log: str, text: str) -> list[str]:
    return [line for line in log.splitlines() if text in line]


def test_mixed_sizes_warn_once_and_a_too_small_view_is_dropped(tmp_path, request,
                                                                da3_small_dir):
    rec, log = run_scenario(tmp_path, request, da3_small_dir, 'relative')
    assert set_stamps(rec) == [1.0, 1.1, 1.3]
    d = rec.diagnostics
    assert d.get('drops.or_a.image_too_small') == '1' and d.get('sets_processed') == '3', d
    assert [k for k in d if k.startswith('drops.') and not k.endswith('image_too_small')] \
        == [], d
    sizes = lines_with(log, 'images of different sizes')
    assert len(sizes) == 1, log   # three mixed sets, one warning
    assert 'or_a 48x64 -> 42x56' in sizes[0] and 'or_b 60x60 -> 56x56 (cropped)' in sizes[0]
    assert 'every view at 42x56' in sizes[0], sizes
    [small] = lines_with(log, 'dropped (image_too_small)')
    assert 'or_a' in small and '10x64' in small and '14 px' in small, small
    # relative mode: each distorted camera is named once (two CameraInfos each), and the
    # published CameraInfo is DA3's own pinhole estimate (D = 0)
    for cam, model in (('or_a', "'plumb_bob'"), ('or_b', "'equidistant'")):
        [line] = lines_with(log, f'{cam}: CameraInfo has distortion_model {model}')
        assert 'not undistorted' in line and 'D = 0' in line, line
    for rig in rec.outputs['/da3/rig_depth']:
        for c in rig.cameras:
            assert c.camera_info.distortion_model == 'plumb_bob' and not any(c.camera_info.d)
            assert (c.depth.height, c.depth.width) == (42, 56)


def test_pose_conditioning_refuses_fisheye_and_publishes_the_distortion_used(
        tmp_path, request, da3_small_dir):
    calibration = tmp_path / 'rig.yaml'
    calibration.write_text(yaml.safe_dump({'base_frame': 'base_link', 'cameras': {
        'or_a': {'translation': [0.0, 0.0, 0.0], 'rotation_xyzw': [0.0, 0.0, 0.0, 1.0]},
        'or_b': {'translation': [0.3, 0.0, 0.0], 'rotation_xyzw': [0.0, 0.0, 0.0, 1.0]}}}))
    rec, log = run_scenario(tmp_path, request, da3_small_dir, 'conditioned',
                            pose_conditioning=True,
                            **{'rig.source': 'yaml', 'rig.calibration_file': str(calibration)})
    assert set_stamps(rec) == [1.2]
    d = rec.diagnostics
    assert (d.get('drops.or_b.unsupported_distortion'), d.get('drops.or_b.info_size_mismatch'),
            d.get('sets_processed')) == ('1', '1', '1'), d
    [refused] = lines_with(log, 'dropped (unsupported_distortion)')
    assert 'or_b' in refused and "'equidistant'" in refused, refused
    [mismatch] = lines_with(log, 'dropped (info_size_mismatch)')
    assert 'or_b CameraInfo is 48x64' in mismatch and '60x60' in mismatch, mismatch
    [warned] = lines_with(log, "or_a: CameraInfo has distortion_model 'plumb_bob'")
    assert 'this distortion_model and D' in warned, warned
    [rig] = rec.outputs['/da3/rig_depth']
    info_a, info_b = (c.camera_info for c in rig.cameras)
    # or_a: 48x64 -> 42x56 (x 0.875), D copied; or_b: 60x60 -> 56x56, cropped 7 px top/bottom
    assert info_a.distortion_model == 'plumb_bob'
    np.testing.assert_allclose(info_a.d, D_A)
    np.testing.assert_allclose(np.reshape(info_a.k, (3, 3)),
                               [[43.75, 0, 28.0], [0, 43.75, 21.0], [0, 0, 1]], rtol=1e-6)
    assert not any(info_b.d)
    np.testing.assert_allclose(np.reshape(info_b.k, (3, 3)),
                               [[42.0, 0, 28.0], [0, 42.0, 21.0], [0, 0, 1]], rtol=1e-6)
