"""The Nav2 outputs (geometry.nav_obstacles, ros.nav_outputs) on synthetic scenes with
closed-form answers: ground, boxes and a wall rendered to depth through pinhole cameras
(test/nav_scene.py); the host and device paths of the depth node give the same messages."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nav_scene import camera_pose, inside_boxes, intrinsics, nearest_obstacle, render_depth
from std_msgs.msg import Header

from da3_ros.engine.prediction import TensorPrediction, ViewGeometry
from da3_ros.geometry.nav_obstacles import NavConfig, nav_obstacles, scan_geometry
from da3_ros.ros.depth.nav_outputs import nav_messages
from da3_ros.ros.depth.outputs import CameraInput, Frames, OutputOptions, build_outputs
from da3_ros.ros.depth.outputs_device import output_differences
from da3_ros.ros.depth.pipeline import DepthPipeline
from da3_ros.ros.pointcloud import cloud_to_points

H, W = 240, 320
VOXEL = 0.05
# [x0 y0 z0 x1 y1 z1] in base_link: two boxes and a wall ahead
BOXES = np.array([[2.0, -1.2, 0.0, 2.5, -0.6, 0.4],
                  [3.0, 0.5, 0.0, 3.6, 1.1, 0.8],
                  [5.0, -1.5, 0.0, 5.2, 1.5, 1.2]])
CFG = NavConfig(min_height_m=0.1, max_height_m=1.0, range_min_m=0.1, range_max_m=6.0,
                voxel_size_m=VOXEL, stride=1, angle_increment=math.radians(0.5))


def front_camera():
    T = camera_pose(0.2, 0.0, 0.6, 0.0, math.radians(15))
    K = intrinsics(200.0, W, H)
    return T, K


def run(depth, K, T, cfg=CFG):
    r = nav_obstacles(torch.from_numpy(np.stack(depth)), torch.from_numpy(np.stack(K)),
                      torch.from_numpy(np.stack(T)), cfg)
    return r.obstacles.numpy(), r.ranges.numpy(), r


def bin_angles(cfg=CFG):
    g = scan_geometry(cfg)
    return g.angle_min + np.arange(g.count) * g.angle_increment


def test_scan_geometry_follows_laserscan_conventions():
    g = scan_geometry(NavConfig(angle_increment=math.radians(1)))
    assert g.count == 360 and g.wraps and g.angle_min == -math.pi
    assert g.angle_max == pytest.approx(math.pi - math.radians(1))   # no bin twice
    g = scan_geometry(NavConfig(angle_min=-1.0, angle_max=1.0, angle_increment=0.1))
    assert g.count == 21 and not g.wraps and g.angle_max == pytest.approx(1.0)


def test_obstacle_cloud_holds_boxes_and_wall_and_no_ground():
    T, K = front_camera()
    depth = render_depth(T, K, H, W, BOXES)
    cloud, _, _ = run([depth], [K], [T])
    assert len(cloud) > 100
    # every point lies on a box or the wall (within a voxel), none in the ground band
    assert inside_boxes(cloud, BOXES, VOXEL).all()
    assert cloud[:, 2].min() >= CFG.min_height_m - 1e-4
    assert cloud[:, 2].max() <= CFG.max_height_m + 1e-4
    assert np.hypot(cloud[:, 0], cloud[:, 1]).max() <= CFG.range_max_m + 1e-4
    for box in BOXES:           # each obstacle is there
        assert inside_boxes(cloud, box[None], VOXEL).sum() >= 5
    # voxel-downsampled: at most one point per voxel
    keys = np.floor(cloud / VOXEL).astype(np.int64)
    assert len(np.unique(keys, axis=0)) == len(cloud)


def test_scan_equals_the_analytic_nearest_obstacle_per_bearing():
    T, K = front_camera()
    depth = render_depth(T, K, H, W, BOXES)
    _, ranges, _ = run([depth], [K], [T])
    angles = bin_angles()
    want = nearest_obstacle(angles, BOXES, CFG.min_height_m, CFG.max_height_m)
    # away from box silhouettes (where the answer jumps) and inside the camera's view
    step = np.radians(0.5)
    edges = np.abs(np.diff(np.minimum(want, 99.0))) > 0.01
    near_edge = np.convolve(np.r_[edges, False] | np.r_[False, edges], np.ones(5), 'same') > 0
    inner = np.abs(angles) < math.radians(30)
    hit = inner & ~near_edge & np.isfinite(want)
    assert hit.sum() > 40
    np.testing.assert_allclose(ranges[hit], want[hit], atol=VOXEL)
    free = inner & ~near_edge & np.isinf(want)
    assert free.sum() > 5 and np.isposinf(ranges[free]).all()      # seen, free: +inf
    assert np.isnan(ranges[np.abs(angles) > math.radians(50)]).all()  # no camera: NaN
    assert not np.isnan(ranges[np.abs(angles) < math.radians(35)]).any()
    assert abs(angles[np.argmin(np.abs(angles))]) < step


def test_obstacles_beyond_range_max_are_free():
    T, K = front_camera()
    depth = render_depth(T, K, H, W, BOXES)
    cfg = NavConfig(min_height_m=0.1, max_height_m=1.0, range_max_m=4.0, voxel_size_m=VOXEL,
                    angle_increment=math.radians(0.5))
    cloud, ranges, _ = run([depth], [K], [T], cfg)
    assert not inside_boxes(cloud, BOXES[2:], VOXEL).any()          # the wall at 5 m
    angles = bin_angles(cfg)
    only_wall = np.abs(angles - math.radians(-5)) < math.radians(3)
    assert np.isposinf(ranges[only_wall]).all()


def test_four_camera_rig_gives_one_consistent_360_scan():
    boxes = np.array([[2.0, -0.5, 0.0, 2.4, 0.5, 0.5], [-0.5, 2.5, 0.0, 0.5, 3.0, 0.6],
                      [-3.2, -1.0, 0.0, -3.0, 1.0, 1.0], [0.8, -2.6, 0.0, 1.6, -2.2, 0.3]])
    K = intrinsics(110.0, W, H)          # 111 deg wide: the four views overlap
    Ts = [camera_pose(0.3 * math.cos(y), 0.3 * math.sin(y), 0.7, y, math.radians(20))
          for y in np.radians([0, 90, 180, 270])]
    depths = [render_depth(T, K, H, W, boxes) for T in Ts]
    _, ranges, _ = run(depths, [K] * 4, Ts)
    assert not np.isnan(ranges).any()                                # 360 deg seen
    # the rig's scan is the per-bearing nearest of the cameras' own scans
    single = np.stack([run([d], [K], [T])[1] for d, T in zip(depths, Ts, strict=True)])
    with np.errstate(all='ignore'):
        expected = np.where(np.isnan(single).all(0), np.nan, np.nanmin(single, axis=0))
    np.testing.assert_array_equal(ranges, expected.astype(np.float32))
    angles = bin_angles()
    want = nearest_obstacle(angles, boxes, CFG.min_height_m, CFG.max_height_m)
    edges = np.abs(np.diff(np.minimum(want, 99.0), append=want[0])) > 0.01
    near_edge = (np.convolve(np.r_[edges, edges[:4]], np.ones(5), 'same')[:len(edges)] > 0)
    near_edge |= np.roll(near_edge, 2) | np.roll(near_edge, -2)
    hit = ~near_edge & np.isfinite(want)
    assert hit.sum() > 60
    np.testing.assert_allclose(ranges[hit], want[hit], atol=VOXEL)
    assert np.isposinf(ranges[~near_edge & np.isinf(want)]).all()


def test_ransac_removes_ground_that_a_wrong_pitch_tilts():
    """Rendered with an 18 deg pitch, told 15 deg: the ground appears tilted by 3 deg, so the
    flat band keeps far ground as obstacles; the RANSAC plane removes it."""
    K = intrinsics(200.0, W, H)
    T_true = camera_pose(0.2, 0.0, 0.6, 0.0, math.radians(18))
    T_told = camera_pose(0.2, 0.0, 0.6, 0.0, math.radians(15))
    depth = render_depth(T_true, K, H, W, BOXES)
    told_to_true = T_true @ np.linalg.inv(T_told)

    def false_points(cfg):
        cloud, _, result = run([depth], [K], [T_told], cfg)
        true = cloud.astype(np.float64) @ told_to_true[:3, :3].T + told_to_true[:3, 3]
        return (~inside_boxes(true, BOXES, 2 * VOXEL)).sum(), result

    flat_false, _ = false_points(CFG)
    ransac_false, result = false_points(
        NavConfig(**{**CFG.__dict__, 'ground_fit': 'ransac'}))
    assert flat_false > 50 and ransac_false == 0
    tilt = math.degrees(math.acos(float(result.ground[2])))
    assert tilt == pytest.approx(3.0, abs=0.3)


def test_confidence_and_invalid_depth_are_dropped():
    T, K = front_camera()
    depth = render_depth(T, K, H, W, BOXES)
    conf = np.full((1, H, W), 5.0, np.float32)
    conf[0, :, W // 2:] = 1.0                       # the right half (y < 0) is unsure
    cfg = NavConfig(**{**CFG.__dict__, 'min_confidence': 2.0})
    r = nav_obstacles(torch.from_numpy(depth[None]), torch.from_numpy(K[None]),
                      torch.from_numpy(T[None]), cfg, torch.from_numpy(conf))
    assert (r.obstacles[:, 1] > -0.05).all()        # nothing from the dropped half
    angles = bin_angles()
    assert torch.isnan(r.ranges[angles < math.radians(-5)]).all()


def _prediction(S=1):
    T, K = front_camera()
    depth = render_depth(T, K, H, W, BOXES)
    view = ViewGeometry((H, W), (H, W), (1.0, 1.0), (0.0, 0.0))
    T_cam_world = np.stack([np.linalg.inv(T)] * S) if S > 1 else None
    pred = TensorPrediction(torch.from_numpy(np.stack([depth] * S)), None, T_cam_world,
                            np.stack([K] * S), (view,) * S, is_metric=True)
    inputs = [CameraInput(f'c{v}', Header(frame_id='cam'), np.zeros((H, W, 3), np.uint8))
              for v in range(S)]
    return pred, inputs, T


def test_messages_follow_rep117_in_the_base_frame():
    pred, _, T = _prediction()
    header = Header(frame_id='base_link')
    header.stamp.sec = 7
    cloud, scan = nav_messages(pred.depth.numpy(), pred.K, T[None], CFG, header,
                               frozenset({'obstacles', 'scan'}))
    assert cloud.header.frame_id == scan.header.frame_id == 'base_link'
    assert scan.header.stamp.sec == 7 and [f.name for f in cloud.fields] == ['x', 'y', 'z']
    g = scan_geometry(CFG)
    assert len(scan.ranges) == g.count and scan.angle_increment == pytest.approx(g.angle_increment)
    assert scan.angle_min == pytest.approx(-math.pi) and scan.range_max == CFG.range_max_m
    ranges = np.asarray(scan.ranges)
    assert np.isnan(ranges).any() and np.isposinf(ranges).any() and np.isfinite(ranges).any()
    assert (ranges[np.isfinite(ranges)] >= scan.range_min).all()
    assert (ranges[np.isfinite(ranges)] <= scan.range_max).all()


@pytest.mark.parametrize('S', [1, 2])
def test_host_and_device_paths_give_the_same_nav_messages(S):
    pred, inputs, T = _prediction(S)
    opts = OutputOptions(frozenset({'depth', 'obstacles', 'scan'}), nav=CFG)
    # world = the camera frame (S = 1) or base_link itself (S = 2: T_cam_world given)
    T_nav_world = T if S == 1 else np.eye(4)
    frames = Frames('cam', np.eye(4), 'cam', np.eye(4), False, 'base_link', T_nav_world)
    host = build_outputs(pred.numpy(), inputs, 5, frames, opts)
    assert host.obstacles is not None and host.scan is not None
    assert host.obstacles.header.frame_id == 'base_link'
    pts = cloud_to_points(host.obstacles).xyz
    assert inside_boxes(pts, BOXES, VOXEL).all()

    class Backend:
        device = torch.device('cpu')

    class Predictor:
        backend = Backend()

        def predict_tensors(self, images, K, T):
            return pred

        def predict(self, rgb, K, T):
            return pred.numpy()

    pipe = DepthPipeline(Predictor(), opts, on_device=True, check_device=True)
    device = pipe.run(inputs, None, None, 5, frames)
    assert pipe.device_check == []
    assert output_differences(device, host) == []
    np.testing.assert_array_equal(np.asarray(device.scan.ranges), np.asarray(host.scan.ranges))
    # without the base frame's transform nothing is built
    none = build_outputs(pred.numpy(), inputs, 5, Frames('cam', np.eye(4), 'cam', np.eye(4),
                                                         False), opts)
    assert none.obstacles is None and none.scan is None
