"""The SLAM node as a real process, fed a 2-camera rig replaying a ground-truth sequence (the
simulated predictor stands in for the network), compared with the SLAM core run in this
process on the same frames: TF, Path, keyframes, map, loop markers and status; then the saved
map folder is loaded back, and a node started with map.load_path republishes it."""
from __future__ import annotations

import os

import numpy as np
import pytest
from slam_node_harness import (
    cloud_xyzc,
    load_recording,
    pose_matrix,
    run_replay,
    slam_env,
    stamp_ns,
    start_slam_node,
    stop_slam_node,
)

from da3_ros.ros.slam.map_store import load_map
from da3_ros.sim.predictor import PROFILES, SimCamera, SimulatedPredictor
from da3_ros.sim.routes import city_grid, load_tum
from da3_ros.slam.chunking import ChunkConfig
from da3_ros.slam.loops import LoopConfig
from da3_ros.slam.map import MapConfig
from da3_ros.slam.protocol import Frame, Rig
from da3_ros.slam.system import SlamConfig, SlamSystem
from da3_ros.slam.trajectory_io import write_tum

NS = '/da3_slam'
YAWS = [0.0, 60.0]


def params(gt_file, save_path, **more) -> dict:
    return {'cameras': ['/cam0', '/cam1'], 'test.simulated_trajectory': str(gt_file),
            'test.simulated_seed': 3,
            'test.simulated_image_hw': ['12', '40'],
            'test.simulated_camera_yaw_deg': [str(y) for y in YAWS],
            'chunk.size': 40, 'chunk.overlap': 20, 'loops.exclude_frames': 100,
            'loops.window': 10, 'loops.nms_frames': 10, 'map.voxel_size_m': 1.0,
            'map.points_per_frame': 64, 'map.save_path': str(save_path),
            'qos.reliable_inputs': True, 'publish.map_period_s': 0.0,
            'publish.tf_period_s': 0.0, 'diagnostics_period_s': 0.2, 'tf_tolerance_s': 0.01,
            **more}


def core_run(gt_file, frames: int) -> SlamSystem:
    """The SLAM core alone on the same frames, configured as params() configures the node."""
    gt = load_tum(gt_file)
    T = np.tile(np.eye(4), (2, 1, 1))
    T[1, :3, :3] = [[np.cos(np.deg2rad(60)), 0, np.sin(np.deg2rad(60))], [0, 1, 0],
                    [-np.sin(np.deg2rad(60)), 0, np.cos(np.deg2rad(60))]]
    rig = Rig(T)
    sim = SimulatedPredictor(gt, PROFILES['nominal'], 3, rig=rig, camera=SimCamera(hw=(12, 40)))
    cfg = SlamConfig(chunk=ChunkConfig(40, 20),
                     loop=LoopConfig(exclude_frames=100, window=10, nms_frames=10),
                     map=MapConfig(voxel_m=1.0, points_per_frame=64))
    slam = SlamSystem(sim, cfg, rig=rig)
    for i in range(frames):
        slam.add_frame(Frame(i, int(round(gt.stamps_s[i] * 1e9)) * 1e-9))
    return slam


@pytest.fixture(scope='module')
def gt_file(tmp_path_factory):
    gt = city_grid(block_m=40.0)
    path = tmp_path_factory.mktemp('gt') / 'city.tum'
    write_tum(path, gt.stamps_s, gt.T_world_cam)
    return path


@pytest.fixture(scope='module')
def rig_run(tmp_path_factory, gt_file):
    """700 frames (34 chunks, loops) through the node; returns (recording, core, folder)."""
    folder = tmp_path_factory.mktemp('slam_rig')
    env = slam_env('rig_run')
    node, log = start_slam_node(folder, params(gt_file, folder / 'saved_map'), env)
    try:
        run_replay(['--gt', str(gt_file), '--cameras', '2', '--frames', '700',
                    '--out', str(folder / 'rec')], env, node, log)
        assert node.poll() is None, log.read_text()
    finally:
        stop_slam_node(node)
    return load_recording(folder / 'rec'), core_run(gt_file, 700), folder


def expected_map_base(slam: SlamSystem) -> np.ndarray:
    T_world_cam = slam.world_poses()
    return np.linalg.inv(T_world_cam[0])[None] @ T_world_cam


def test_path_tf_and_keyframes_match_the_core(rig_run, gt_file):
    rec, slam, _ = rig_run
    expected = expected_map_base(slam)
    path = rec[f'{NS}/path'][-1]
    assert path.header.frame_id == 'map' and len(path.poses) == len(expected) == 700
    stamps = [int(round(s * 1e9)) for s in load_tum(gt_file).stamps_s[:700]]
    assert [stamp_ns(p.header) for p in path.poses] == stamps
    got = np.stack([pose_matrix(p.pose.position, p.pose.orientation) for p in path.poses])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    tfs = [t for m in rec['/tf'] for t in m.transforms]
    assert {(t.header.frame_id, t.child_frame_id) for t in tfs} == {('map', 'cam0_optical')}
    assert len(tfs) == slam.stats.chunks == 34           # one per chunk (no republishing)
    last = tfs[-1]
    assert stamp_ns(last.header) == stamps[-1]
    np.testing.assert_allclose(pose_matrix(last.transform.translation, last.transform.rotation),
                               expected[-1], atol=1e-6)
    keyframes = rec[f'{NS}/keyframes'][-1].poses
    assert len(keyframes) == len(slam.graph.estimates)
    T0 = np.linalg.inv(slam.world_poses()[0])
    k = slam.graph.estimates[-1]
    np.testing.assert_allclose([keyframes[-1].position.x, keyframes[-1].position.y,
                                keyframes[-1].position.z], T0[:3, :3] @ k.t + T0[:3, 3],
                               atol=1e-6)


def test_map_loops_and_status_match_the_core(rig_run):
    rec, slam, _ = rig_run
    T0 = np.linalg.inv(slam.world_poses()[0])
    points = slam.map.points_world(slam.graph.estimates) @ T0[:3, :3].T + T0[:3, 3]
    cloud = cloud_xyzc(rec[f'{NS}/map'][-1])
    assert rec[f'{NS}/map'][-1].header.frame_id == 'map'
    np.testing.assert_allclose(cloud[:, :3], points, atol=1e-3)
    np.testing.assert_allclose(cloud[:, 3], slam.map.weight, rtol=1e-6)
    accepted = slam.stats.accepted_pairs
    assert len(accepted) >= 3                            # the city revisits close loops
    markers = {m.ns: m for m in rec[f'{NS}/loop_closures'][-1].markers}
    assert len(markers['loops_accepted'].points) == 2 * len(accepted)
    status = [s for s in rec[f'{NS}/status'] if s.state == 'tracking'][-1]
    assert (status.frames, status.chunks, status.loops_accepted) == (700, 34, len(accepted))
    assert status.tf_child_frame == 'cam0_optical' and status.frames_dropped == 0
    assert status.map_points == len(slam.map) and 0 < status.alignment_inlier_ratio <= 1
    assert status.chunk_scale == pytest.approx(slam.graph.estimates[-1].s, rel=1e-6)
    assert rec[f'{NS}/status'][-1].state == 'reset'      # ~/reset was called last
    assert rec[f'{NS}/status'][-1].frames == 0


def test_saved_map_round_trips(rig_run, gt_file):
    rec, slam, folder = rig_run
    link = folder / 'saved_map'
    assert link.is_symlink() and len(list(folder.glob('.saved_map.v*'))) == 1
    loaded = load_map(link)
    cloud = cloud_xyzc(rec[f'{NS}/map'][-1])
    np.testing.assert_allclose(loaded.points_map, cloud[:, :3], atol=1e-3)
    np.testing.assert_allclose(loaded.T_map_base, expected_map_base(slam), atol=1e-6)
    stamps = [int(round(s * 1e9)) for s in load_tum(gt_file).stamps_s[:700]]
    assert loaded.stamps_ns.tolist() == stamps
    assert loaded.frames == {'map': 'map', 'camera': 'cam0_optical', 'base': 'cam0_optical'}
    assert loaded.metadata['num_frames'] == 700


def test_node_publishes_a_loaded_map(rig_run, tmp_path):
    _, _, folder = rig_run
    env = slam_env('prior')
    p = params(folder / 'unused.tum', tmp_path / 'new', **{'map.load_path':
                                                           str(folder / 'saved_map')})
    p['test.simulated_trajectory'] = str(next(folder.parent.glob('gt*/city.tum')))
    node, log = start_slam_node(tmp_path, p, env)
    try:
        run_replay(['--prior-only', '--out', str(tmp_path / 'rec')], env, node, log)
    finally:
        stop_slam_node(node)
    rec, loaded = load_recording(tmp_path / 'rec'), load_map(folder / 'saved_map')
    np.testing.assert_allclose(cloud_xyzc(rec[f'{NS}/prior_map'][0])[:, :3], loaded.points_map,
                               atol=1e-4)
    poses = rec[f'{NS}/prior_path'][0].poses
    got = np.stack([pose_matrix(p.pose.position, p.pose.orientation) for p in poses])
    np.testing.assert_allclose(got, loaded.T_map_base, atol=1e-6)


def test_odometry_gives_map_to_odom(tmp_path, gt_file):
    """With odom -> base_link in TF the node publishes map -> odom (never map -> base_link),
    and map -> odom -> base_link equals the core's base pose."""
    env = slam_env('odom')
    p = params(gt_file, tmp_path / 'm', cameras=['/cam0'], **{
        'frames.base': 'base_link', 'loops.enabled': False,
        'test.simulated_camera_yaw_deg': ['0']})
    node, log = start_slam_node(tmp_path, p, env)
    try:
        run_replay(['--gt', str(gt_file), '--frames', '80', '--odom', '--out',
                    str(tmp_path / 'rec')], env, node, log)
    finally:
        stop_slam_node(node)
    rec = load_recording(tmp_path / 'rec')
    ours = [t for m in rec['/tf'] for t in m.transforms if t.header.frame_id == 'map']
    assert ours and {t.child_frame_id for t in ours} == {'odom'}
    from slam_replay_helper import T_base_cam0, odom_pose
    gt = load_tum(gt_file)
    T_cam_base = np.linalg.inv(T_base_cam0())
    sim = SimulatedPredictor(gt, PROFILES['nominal'], 3, camera=SimCamera(hw=(12, 40)))
    slam = SlamSystem(sim, SlamConfig(chunk=ChunkConfig(40, 20), loops_enabled=False,
                                      map=MapConfig(voxel_m=1.0, points_per_frame=64)))
    for i in range(80):
        slam.add_frame(Frame(i, int(round(gt.stamps_s[i] * 1e9)) * 1e-9))
    T_world_base = slam.world_poses() @ T_cam_base
    T_map_base = np.linalg.inv(T_world_base[0]) @ T_world_base[-1]
    T_map_odom = pose_matrix(ours[-1].transform.translation, ours[-1].transform.rotation)
    np.testing.assert_allclose(T_map_odom @ odom_pose(gt, 79, T_cam_base), T_map_base,
                               atol=1e-6)


def test_bad_parameter_stops_the_node_with_its_name(tmp_path):
    env = slam_env('bad')
    node, log = start_slam_node(tmp_path, {'chunk.size': 10, 'chunk.overlap': 10,
                                           'cameras': ['/cam0']}, env)
    assert node.wait(timeout=60) == 2
    assert "parameter 'chunk.overlap'" in log.read_text()
    assert os.path.exists(log)
