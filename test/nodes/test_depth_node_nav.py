"""The depth node's Nav2 outputs (issue 19) through the real node process on a rendered scene:
nav_scene_node.py runs DepthNode with the shipped config/depth_usb_camera_nav2.yaml (one camera,
DA3METRIC, 360 deg scan in base_link), its network replaced by the scene renderer of
test/nav_scene.py; nav_scene_publisher.py sends base_link -> camera on /tf_static, CameraInfo
and an image, and records da3/obstacles and da3/scan. Decoded with rosbags and numpy from the
message bytes (not the package's decoders); the answers are closed-form (nav_scene)."""
import json
import math

import numpy as np
import pytest
import yaml
from nav_scene import inside_boxes, nearest_obstacle, render_depth
from nav_scene_node import (
    BOX_A,
    BOX_B,
    CAMERA_FRAME,
    CURB,
    FAR,
    SCENE_BOXES,
    T_BASE_CAM,
    WALL,
    H,
    K,
    W,
)
from node_harness import (
    HERE,
    ROOT,
    Recording,
    back_project,
    cloud_arrays,
    ros_env,
    run_helper,
    stamp_ns,
    stop,
    write_params,
)
from node_process import start_node

CONFIG = ROOT / 'config' / 'depth_usb_camera_nav2.yaml'


@pytest.fixture(scope='module')
def recorded(tmp_path_factory, request):
    shipped = yaml.safe_load(CONFIG.read_text())['da3_depth']['ros__parameters']
    params = {**shipped, 'device': 'cpu', 'qos.reliable_inputs': True,
              'qos.reliable_outputs': True, 'diagnostics_period_s': 0.1}
    tmp = tmp_path_factory.mktemp('nav_node')
    env = ros_env(request.node.nodeid)
    log = tmp / 'node.log'
    node = start_node(str(HERE / 'nav_scene_node.py'), write_params(tmp / 'params.yaml', params),
                      env, log)
    out = tmp / 'recorded'
    try:
        run_helper('nav_scene_publisher.py',
                   ['--camera', shipped['cameras'][0], '--frame', CAMERA_FRAME,
                    '--base', shipped['nav.base_frame'], '--T', json.dumps(T_BASE_CAM.tolist()),
                    '--K', json.dumps(K.tolist()), '--size', str(H), str(W), '--out', str(out)],
                   env, node, log, timeout_s=60.0)
        assert node.poll() is None, log.read_text()
    finally:
        stop(node)
    text = log.read_text()
    assert 'Traceback' not in text and 'dropped (' not in text, text
    rec = Recording(out)
    [obstacles], [scan] = rec.outputs['/da3/obstacles'], rec.outputs['/da3/scan']
    return params, rec, obstacles, scan


def scan_angles(scan) -> np.ndarray:
    return scan.angle_min + np.arange(len(scan.ranges)) * np.float64(scan.angle_increment)


def seen_bearings() -> tuple[float, float]:
    """The span of base-frame bearings the camera sees (any surface at >= range_min)."""
    depth = render_depth(T_BASE_CAM, K, H, W, SCENE_BOXES)
    p = back_project(np.where(np.isfinite(depth), depth, np.nan), K, 1)
    p = p[np.isfinite(p[:, 2])] @ T_BASE_CAM[:3, :3].T + T_BASE_CAM[:3, 3]
    theta = np.arctan2(p[:, 1], p[:, 0])
    return float(theta.min()), float(theta.max())


def test_scan_header_and_angles_follow_rep117_and_the_params(recorded):
    params, rec, obstacles, scan = recorded
    assert scan.header.frame_id == obstacles.header.frame_id == params['nav.base_frame']
    image_stamp = rec.inputs[-1][1]
    assert stamp_ns(scan.header) == stamp_ns(obstacles.header) == image_stamp
    # 360 deg at nav.scan.angle_increment_rad: bins tile the circle, no bearing twice
    n = round(2 * math.pi / params['nav.scan.angle_increment_rad'])
    assert len(scan.ranges) == n == 720
    assert scan.angle_min == pytest.approx(params['nav.scan.angle_min_rad'], abs=1e-6)
    assert scan.angle_increment == pytest.approx(2 * math.pi / n, rel=1e-6)
    assert scan.angle_max == pytest.approx(scan.angle_min + (n - 1) * scan.angle_increment,
                                           abs=1e-5)
    assert scan.angle_max < params['nav.scan.angle_max_rad']
    assert scan.range_min == pytest.approx(params['nav.range_min_m'])
    assert scan.range_max == pytest.approx(params['nav.range_max_m'])
    ranges = np.asarray(scan.ranges, np.float32)
    finite = ranges[np.isfinite(ranges)]
    assert ((finite >= scan.range_min) & (finite <= scan.range_max)).all()
    assert not (np.isinf(ranges) & (ranges < 0)).any()


def test_scan_ranges_equal_the_nearest_obstacle_per_bearing(recorded):
    params, _, _, scan = recorded
    voxel, inc = params['nav.voxel_size_m'], float(scan.angle_increment)
    ranges = np.asarray(scan.ranges, np.float64)
    angles = scan_angles(scan)

    def analytic(bearings):
        want = nearest_obstacle(bearings.ravel(), SCENE_BOXES, params['nav.min_height_m'],
                                params['nav.max_height_m']).reshape(bearings.shape)
        return np.where(want > params['nav.range_max_m'], np.inf, want)

    want = analytic(angles)
    # well-conditioned bins: the analytic answer varies by at most a voxel across the bin and
    # half its neighbours (no silhouette edge, no grazing face, not at range_max)
    across = np.minimum(analytic(angles[:, None] + inc * np.linspace(-1, 1, 21)[None]), 99.0)
    well = across.max(1) - across.min(1) <= voxel
    lo, hi = seen_bearings()
    inside = (angles > lo + 2 * inc) & (angles < hi - 2 * inc)
    hit = inside & well & np.isfinite(want)
    free = inside & well & np.isinf(want)
    assert hit.sum() > 50 and free.sum() > 50, (hit.sum(), free.sum())
    np.testing.assert_allclose(ranges[hit], want[hit], atol=voxel)
    assert np.isposinf(ranges[free]).all(), angles[free & ~np.isposinf(ranges)]
    # in every bin (edges too) nothing nearer than the nearest surface within the bin
    in_bin = np.minimum(analytic(angles[:, None] + inc * np.linspace(-0.5, 0.5, 11)[None]), 99)
    measured = np.isfinite(ranges)
    assert (ranges[measured] >= in_bin.min(1)[measured] - 0.01).all()
    # every box in the band within range_max shows up in the scan, the far box does not
    for box in (BOX_A, BOX_B, WALL):
        bearings = np.arctan2([box[1], box[4]], [box[0], box[0]])
        assert np.isfinite(ranges[(angles > bearings.min()) & (angles < bearings.max())]).any()
    # NaN exactly outside the camera's view (one bin of slack at its two edges), never inside
    outside = (angles < lo - inc) | (angles > hi + inc)
    assert np.isnan(ranges[outside]).all() and outside.sum() > 500
    assert not np.isnan(ranges[inside]).any()


def test_obstacle_cloud_lies_on_the_boxes_and_wall_not_the_ground(recorded):
    params, _, obstacles, _ = recorded
    voxel = params['nav.voxel_size_m']
    assert [f.name for f in obstacles.fields] == ['x', 'y', 'z']
    fields = cloud_arrays(obstacles)
    xyz = np.stack([fields['x'], fields['y'], fields['z']], -1).astype(np.float64)
    assert len(xyz) > 100 and np.isfinite(xyz).all()
    obstacles_in_band = np.array([BOX_A, BOX_B, WALL])
    assert inside_boxes(xyz, obstacles_in_band, voxel).all()
    for box in obstacles_in_band:
        assert inside_boxes(xyz, box[None], 0.0).sum() >= 5, box
    # nothing of the ground band (the floor, the curb, the boxes' feet), nothing too far
    assert xyz[:, 2].min() >= params['nav.min_height_m'] - 1e-4
    assert xyz[:, 2].max() <= params['nav.max_height_m'] + 1e-4
    assert not inside_boxes(xyz, np.array([CURB, FAR]), voxel / 2).any()
    assert np.hypot(xyz[:, 0], xyz[:, 1]).max() <= params['nav.range_max_m'] + 1e-4
    # voxel-downsampled: at most one point per voxel
    keys = np.floor(xyz / voxel).astype(np.int64)
    assert len(np.unique(keys, axis=0)) == len(xyz)
