"""The depth node's pure modules, without processes: parameters, rig calibration, outputs
and diagnostics."""
import json

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticStatus
from node_process import ROOT
from std_msgs.msg import Header

from da3_ros.engine.prediction import Prediction, ViewGeometry
from da3_ros.errors import ConfigError
from da3_ros.geometry.points import CloudConfig, back_project
from da3_ros.ros.depth.nav_outputs import NAV_OUTPUTS
from da3_ros.ros.depth.outputs import CameraInput, Frames, OutputOptions, build_outputs
from da3_ros.ros.depth.params import (
    OUTPUTS,
    PARAM_NAMES,
    PARAMS,
    apply_live,
    parse_depth_config,
)
from da3_ros.ros.depth.rig_calibration import load_rig_calibration, world_to_cameras
from da3_ros.ros.diagnostics import CauseThrottle, DepthDiagnostics, diagnostics_values
from da3_ros.ros.param_paths import resolve_paths
from da3_ros.ros.params import unknown_parameters
from da3_ros.ros.pointcloud import cloud_to_points
from da3_ros.ros.tf_buffer import transform_to_matrix
from da3_ros.ros.time_sync import SyncCounts
from shared_data import DATA

CAMS = {'cameras': ['/front', '/rear']}


def test_defaults_and_topics():
    cfg = parse_depth_config({**CAMS, 'image_transport': ['raw', 'compressed']})
    assert [c.image_topic for c in cfg.cameras] == ['/front/image_raw',
                                                    '/rear/image_raw/compressed']
    assert [c.info_topic for c in cfg.cameras] == ['/front/camera_info', '/rear/camera_info']
    assert [c.output_prefix for c in cfg.cameras] == ['/front/da3', '/rear/da3']
    assert cfg.max_jump_ns == 5_000_000_000 > cfg.max_wait_ns
    assert cfg.slop_ns == 50_000_000 and cfg.publish == frozenset(OUTPUTS) - {'colorized_depth'}
    assert not cfg.needs_intrinsics and not cfg.needs_extrinsics
    assert all(p.description for p in PARAMS)


@pytest.mark.parametrize('values, name', [
    ({'cameras': []}, 'cameras'),
    ({'cameras': ['/a/cam', '/b/cam']}, 'cameras'),            # names repeat
    ({'sync.slop_s': -1.0}, 'sync.slop_s'),
    ({'sync.slop_s': 'fast'}, 'sync.slop_s'),
    ({'sync.max_wait_s': 0.01}, 'sync.max_wait_s'),
    ({'sync.max_wait_s': 2.0, 'sync.max_jump_s': 1.5}, 'sync.max_jump_s'),
    ({'sync.queue_size': 0}, 'sync.queue_size'),
    ({'image_transport': ['raw', 'raw', 'raw']}, 'image_transport'),
    ({'image_transport': ['theora']}, 'image_transport'),
    ({'metric_mode': 'absolute'}, 'metric_mode'),
    ({'metric_mode': 'rig_calibration'}, 'rig.source'),
    ({'metric_mode': 'rig_calibration', 'rig.source': 'tf'}, 'pose_conditioning'),
    ({'pose_conditioning': True}, 'rig.source'),
    ({'rig.source': 'yaml', 'rig.calibration_file': '/nonexistent.yaml'},
     'rig.calibration_file'),
    ({'backend': 'tensorrt'}, 'model_file'),
    ({'device': 'gpu'}, 'device'),
    ({'device': 'cpu', 'precision': 'fp16'}, 'precision'),    # fp16 autocast needs CUDA
    ({'compile': True, 'device': 'cpu', 'precision': 'bf16'}, 'compile'),
    ({'compile': True, 'device': 'cuda', 'precision': 'fp32'}, 'compile'),
    ({'compile': True, 'device': 'cuda', 'precision': 'bf16', 'backend': 'onnxruntime',
      'model_file': '/x.onnx'}, 'compile'),
    ({'process_res': 5}, 'process_res'),
    ({'cloud.min_range_m': 5.0, 'cloud.max_range_m': 2.0}, 'cloud.max_range_m'),
    ({'cloud.stride': 0}, 'cloud.stride'),
    ({'output_resolution': 'full'}, 'output_resolution'),
    ({'no_such': 1}, 'no_such'),
])
def test_bad_values_name_their_parameter(values, name):
    with pytest.raises(ConfigError, match=f"^parameter '{name}'"):
        parse_depth_config({**CAMS, **values})


LIVE_CHANGES = {'sync.slop_s': 0.2, 'sync.queue_size': 3, 'sync.max_wait_s': 2.0,
                'sync.max_jump_s': 9.0, 'publish.cloud': False, 'publish.colorized_depth': True,
                'cloud.min_confidence': 1.5, 'cloud.remove_sky': False, 'cloud.stride': 4,
                'cloud.voxel_size_m': 0.1, 'cloud.min_range_m': 1.0, 'cloud.max_range_m': 9.0,
                'fused.voxel_size_m': 0.3, 'log_throttle_s': 1.0,
                # Nav2 outputs (publish.obstacles / scan stay off: relative mode refuses them)
                'nav.min_height_m': 0.2, 'nav.max_height_m': 1.0, 'nav.ground_height_m': -0.1,
                'nav.ground_fit': 'ransac', 'nav.ransac_band_m': 0.5, 'nav.min_confidence': 2.0,
                'nav.stride': 3, 'nav.range_min_m': 0.3, 'nav.range_max_m': 4.0,
                'nav.voxel_size_m': 0.1, 'nav.scan.angle_min_rad': -1.0,
                'nav.scan.angle_max_rad': 1.0, 'nav.scan.angle_increment_rad': 0.01}


def test_live_parameters_give_what_start_up_gives():
    """apply_live on a running config equals parsing the same values at start-up; every
    other parameter is read at start-up only (declared read-only)."""
    live = {p.name for p in PARAMS if p.live}
    assert live == set(LIVE_CHANGES) | {f'publish.{out}' for out in OUTPUTS + NAV_OUTPUTS}
    start = {**CAMS, 'process_res': 280}
    cfg = parse_depth_config(start)
    values = {p.name: p.default for p in PARAMS if p.live}
    assert apply_live(cfg, values) == cfg
    assert apply_live(cfg, {**values, **LIVE_CHANGES}) == parse_depth_config(
        {**start, **LIVE_CHANGES})


@pytest.mark.parametrize('change, name', [
    ({'sync.slop_s': 2.0}, 'sync.max_wait_s'),          # above sync.max_wait_s 1.0
    ({'sync.max_jump_s': 0.5}, 'sync.max_jump_s'),
    ({'cloud.min_range_m': 300.0}, 'cloud.max_range_m'),
    ({'cloud.stride': 0}, 'cloud.stride'),
    ({'publish.cloud': 1}, 'publish.cloud'),
    ({'nav.max_height_m': 0.0}, 'nav.max_height_m'),    # below nav.min_height_m
    ({'nav.range_max_m': 0.05}, 'nav.range_max_m'),
    ({'publish.scan': True}, 'metric_mode'),             # relative depth: no Nav2 outputs
])
def test_live_values_are_checked_as_at_start_up(change, name):
    values = {p.name: p.default for p in PARAMS if p.live}
    with pytest.raises(ConfigError, match=f"^parameter '{name}'"):
        apply_live(parse_depth_config(CAMS), {**values, **change})


def test_unknown_keys_are_named_with_the_closest_parameter():
    unknown_parameters(['cameras', 'use_sim_time', 'qos_overrides./a.publisher.depth'],
                       PARAMS, 'depth node')
    with pytest.raises(ConfigError, match="^parameter 'sync.slop': is not a depth node "
                       "parameter; did you mean 'sync.slop_s'"):
        unknown_parameters(['cameras', 'sync.slop'], PARAMS, 'depth node')
    with pytest.raises(ConfigError, match=r"^parameter 'zzz': is not a depth node parameter "
                       r"\(unknown too"):
        unknown_parameters(['zzz', 'zzzz'], PARAMS, 'depth node')


def test_compile_is_accepted_for_torch_bf16_on_cuda():
    cfg = parse_depth_config({**CAMS, 'compile': True, 'device': 'cuda:1', 'precision': 'bf16'})
    assert cfg.compile and not parse_depth_config(CAMS).compile


@pytest.mark.parametrize('file', ['depth_nuscenes_6cam.yaml', 'depth_usb_camera.yaml'])
def test_config_files_use_declared_names_and_parse(file, monkeypatch):
    params = yaml.safe_load((ROOT / 'config' / file).read_text())['da3_depth']['ros__parameters']
    assert set(params) <= set(PARAM_NAMES)
    monkeypatch.chdir('/')  # the calibration path is relative to the params file
    cfg = parse_depth_config(resolve_paths(params, dict.fromkeys(params, ROOT / 'config')))
    assert len(cfg.cameras) == len(params['cameras'])


def test_nuscenes_calibration_matches_the_dataset():
    cal = load_rig_calibration(ROOT / 'config' / 'nuscenes_6cam_calibration.yaml')
    data = json.loads((DATA / 'nuscenes_mini_6cam_sample' /
                       'calibration.json').read_text())['cameras']
    assert cal.base_frame == 'base_link' and set(cal.cameras) == set(data)
    names = sorted(data)
    T = cal.extrinsics(names)
    for name, T_cam_base in zip(names, T, strict=True):
        np.testing.assert_allclose(np.linalg.inv(T_cam_base), data[name]['cam2ego'], atol=1e-12)
        np.testing.assert_array_equal(cal.cameras[name].K, data[name]['cam2img'])


def test_calibration_quaternion_form_and_errors(tmp_path):
    path = tmp_path / 'rig.yaml'
    half = float(np.sqrt(0.5))
    path.write_text(yaml.safe_dump({'base_frame': 'base', 'cameras': {
        'a': {'translation': [1.0, 2.0, 3.0], 'rotation_xyzw': [0.0, 0.0, half, half]}}}))
    [T] = world_to_cameras([load_rig_calibration(path).cameras['a'].T_base_camera])
    expected = np.array([[0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1.0]])
    np.testing.assert_allclose(np.linalg.inv(T), expected, atol=1e-12)
    with pytest.raises(ConfigError, match='no camera'):
        load_rig_calibration(path).extrinsics(['b'])
    path.write_text(yaml.safe_dump({'cameras': {'a': {'T_base_camera': np.eye(3).tolist()}}}))
    with pytest.raises(ConfigError, match='4x4'):
        load_rig_calibration(path)
    path.write_text(yaml.safe_dump({'cameras': {'a': {'T_base_camera': (2 * np.eye(4))
                                                      .tolist()}}}))
    with pytest.raises(ConfigError, match='rigid'):
        load_rig_calibration(path)


def make_prediction(rng, S=2, H=14, W=28, h_in=30, w_in=60) -> Prediction:
    K = np.array([[20.0, 0.0, 13.5], [0.0, 20.0, 6.5], [0.0, 0.0, 1.0]])
    T = np.stack([np.eye(4)] * S)
    T[:, 0, 3] = -np.arange(S)  # camera v sits at x = v in the world
    view = ViewGeometry((h_in, w_in), (H, W), (W / w_in, H / h_in), (0.0, 0.0))
    return Prediction(rng.uniform(1, 5, (S, H, W)).astype(np.float32),
                      rng.uniform(1, 3, (S, H, W)).astype(np.float32), T, np.stack([K] * S),
                      (view,) * S, depth_scale=np.ones(S))


@pytest.mark.parametrize('resolution', ['network', 'input'])
def test_outputs_are_consistent(resolution):
    rng = np.random.default_rng(0)
    pred = make_prediction(rng)
    D = (-0.2, 0.05, 0.001, 0.0, 0.0, 0.01, 0.0, 0.0)   # the input CameraInfo's, K used
    inputs = [CameraInput(f'c{i}', Header(frame_id=f'cam{i}'), rng.integers(
        0, 256, (30, 60, 3), dtype=np.uint8), distortion) for i, distortion in
        enumerate([None, ('rational_polynomial', D)])]
    opts = OutputOptions(frozenset(OUTPUTS), resolution, CloudConfig(min_confidence=2.0))
    T_fixed_world = np.eye(4)
    T_fixed_world[2, 3] = 10.0
    out = build_outputs(pred, inputs, 7, Frames('map', T_fixed_world, 'map', T_fixed_world, True),
                        opts)
    size = (14, 28) if resolution == 'network' else (30, 60)
    fused = []
    for v, cam in enumerate(out.cameras):
        assert (cam.depth.height, cam.depth.width) == size == (cam.camera_info.height,
                                                                cam.camera_info.width)
        depth = np.frombuffer(bytes(cam.depth.data), '<f4').reshape(size)
        conf = np.frombuffer(bytes(cam.confidence.data), '<f4').reshape(size)
        K = np.reshape(cam.camera_info.k, (3, 3))
        keep = (conf >= 2.0) & np.isfinite(depth)
        points = cloud_to_points(cam.cloud)
        np.testing.assert_allclose(points.xyz, back_project(depth, K)[keep], rtol=1e-6)
        fused.append(points.xyz + [v, 0.0, 10.0])
        assert cam.colorized_depth.encoding == 'rgb8'
        # the depth lies on the input's pixel grid: its distortion holds at any resolution
        assert (cam.camera_info.distortion_model, tuple(cam.camera_info.d)) == (
            ('plumb_bob', (0.0,) * 5) if v == 0 else ('rational_polynomial', D))
        assert out.rig_depth.cameras[v].camera_info == cam.camera_info
    np.testing.assert_allclose(cloud_to_points(out.fused_cloud).xyz, np.concatenate(fused),
                               rtol=1e-6)
    assert [(t.header.frame_id, t.child_frame_id) for t in out.transforms] == [
        ('map', 'cam0_da3'), ('map', 'cam1_da3')]
    np.testing.assert_allclose(transform_to_matrix(out.transforms[1].transform)[:3, 3],
                               [1.0, 0.0, 10.0])
    assert out.rig_depth.header.frame_id == 'map' and len(out.rig_depth.cameras) == 2
    given = build_outputs(pred, inputs, 7, Frames('map', np.eye(4), 'map', np.eye(4), False),
                          opts)
    assert given.transforms == []  # the rig's own poses are never re-published


def test_diagnostics_counts_and_throttle():
    now = [0.0]
    diag = DepthDiagnostics(['a', 'b'], clock=lambda: now[0])
    for t in (0.0, 0.1, 0.2):
        now[0] = t
        diag.image_received('a')
    diag.drop('truncated', 'a')
    diag.drop('busy')
    diag.stage('inference', 0.25)
    sync = SyncCounts({(1, 'unmatched'): 2, (0, 'time_jump'): 1}, (5, 0), 1, 0)
    msg = diag.to_message(Header(), 'da3_depth', sync)
    values = diagnostics_values(msg)
    assert values['a.images'] == '3' and float(values['a.rate_hz']) == pytest.approx(10.0)
    assert values['drops.truncated'] == '1' and values['drops.a.truncated'] == '1'
    assert values['drops.unmatched'] == '2' and values['drops.rig.busy'] == '1'
    assert values['drops.b.unmatched'] == '2' and values['drops.a.time_jump'] == '1'
    assert (values['superseded'], values['superseded.a']) == ('5', '5')
    assert 'superseded.b' not in values and values['sync.time_jumps'] == '1'
    assert values['sync.resets'] == '0'
    assert float(values['latency_ms.inference.max']) == pytest.approx(250.0)
    assert msg.status[2].level == DiagnosticStatus.WARN  # new drops since the last report
    faster = SyncCounts(sync.drops, (500, 0), 1, 0)  # only superseded frames grew: normal
    again = diag.to_message(Header(), 'da3_depth', faster)
    assert again.status[2].level == DiagnosticStatus.OK
    assert diagnostics_values(again)['superseded.a'] == '500'
    assert diagnostics_values(diag.to_message(Header(), 'da3_depth'))['superseded'] == '0'
    throttle = CauseThrottle(5.0, clock=lambda: now[0])
    assert throttle.should_log('x') and not throttle.should_log('x') and throttle.should_log('y')
    now[0] += 5.0
    assert throttle.should_log('x')
