"""The slam node's own SLAM-session code (parse_slam_config -> system_factory -> SlamSession,
as SlamNode and `da3-ros process --slam` build it) with a simulated 3-camera surround rig
closes a revisit driven the other way: the rig path (per-camera retrieval) is what a
several-camera configuration gets, with no extra parameter (issue 18 item 5)."""
from __future__ import annotations

from da3_ros.ros.slam.inputs import system_factory
from da3_ros.ros.slam.params import parse_slam_config
from da3_ros.ros.slam.session import FrameInput, SlamSession
from da3_ros.sim.evaluation import ate_rmse_m
from da3_ros.sim.routes import opposite_route
from da3_ros.slam.system import count_false
from da3_ros.slam.trajectory_io import write_tum


def _session(tmp_path, gt, loops: bool) -> SlamSession:
    write_tum(tmp_path / 'gt.tum', gt.stamps_s, gt.T_world_cam)
    cfg = parse_slam_config({
        'cameras': ['/front', '/right', '/rear'], 'chunk.size': 40, 'chunk.overlap': 20,
        'loops.enabled': loops, 'loops.exclude_frames': 100, 'loops.window': 10,
        'loops.nms_frames': 10, 'map.voxel_size_m': 1.0, 'map.points_per_frame': 64,
        'frames.odom': '', 'test.simulated_trajectory': str(tmp_path / 'gt.tum'),
        'test.simulated_seed': 3, 'test.simulated_camera_yaw_deg': ['0', '90', '180']},
        simulated=True)
    session = SlamSession(system_factory(cfg))
    for stamp_s in gt.stamps_s:
        session.add(FrameInput(int(round(stamp_s * 1e9))))
    session.finish()
    return session


def test_surround_rig_session_closes_an_opposite_direction_loop(tmp_path):
    gt = opposite_route(scale=0.4)
    closed = _session(tmp_path, gt, loops=True)
    accepted, _ = closed.loop_pairs()
    assert closed.slam.rig.num_cameras == 3
    assert len(accepted) >= 2 and count_false(accepted, gt.positions) == 0
    back = gt.positions[[q for q, _ in accepted]]
    assert (back[:, 1] < -1).all()            # queries on the way back (opposite lane)
    open_loop = _session(tmp_path, gt, loops=False)
    ate_closed, ate_open = (ate_rmse_m(gt.T_world_cam, s.slam.world_poses(), gt.stamps_s)
                            for s in (closed, open_loop))       # evo, Sim(3)-aligned
    assert ate_closed < 0.7 * ate_open
