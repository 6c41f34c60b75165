"""Trajectory and map files: round trips, evo reads what we write, atomic replacement."""
import numpy as np
import pytest
from evo.tools import file_interface

from da3_ros.geometry.sim3 import rotation_from_rotvec
from da3_ros.slam import trajectory_io
from da3_ros.slam.map_io import load_result, save_result


def _poses(rng, n=30):
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, :3, :3] = rotation_from_rotvec(rng.normal(size=(n, 3)) * 2)
    T[:, :3, 3] = rng.normal(size=(n, 3)) * 100
    return T


def test_tum_and_kitti_files_are_read_back_by_evo(tmp_path, rng):
    T, stamps = _poses(rng), np.arange(30) * 0.1 + 1e9
    trajectory_io.write_tum(tmp_path / 'a.tum', stamps, T)
    trajectory_io.write_kitti(tmp_path / 'a.kitti', T)
    tum = file_interface.read_tum_trajectory_file(str(tmp_path / 'a.tum'))
    kitti = file_interface.read_kitti_poses_file(str(tmp_path / 'a.kitti'))
    np.testing.assert_allclose(np.array(tum.poses_se3), T, atol=1e-6)
    np.testing.assert_allclose(tum.timestamps, stamps, atol=1e-6)
    np.testing.assert_allclose(np.array(kitti.poses_se3), T, atol=1e-6)


def test_failed_write_keeps_the_old_file(tmp_path, rng):
    path = tmp_path / 'traj.kitti'
    trajectory_io.write_kitti(path, _poses(rng))
    before = path.read_bytes()
    with pytest.raises(TypeError):
        trajectory_io.atomic_write_bytes(path, 'not bytes')
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['traj.kitti']    # no temp file left


def test_saved_result_loads_back(tmp_path, rng):
    T, stamps = _poses(rng), np.arange(30) * 0.1
    pts, w = rng.normal(size=(500, 3)).astype(np.float32), rng.random(500).astype(np.float32)
    save_result(tmp_path / 'run', pts, w, stamps, T, {'note': 'test'})
    back = load_result(tmp_path / 'run')
    np.testing.assert_array_equal(back.points, pts)
    np.testing.assert_array_equal(back.weight, w)
    np.testing.assert_allclose(back.T_world_cam, T, atol=1e-6)
    assert back.metadata['note'] == 'test' and back.metadata['num_points'] == 500


# closed form: a rotation by angle a about unit axis n is q = (n sin(a/2), cos(a/2)), x y z w
CLOSED_FORM = [
    (np.eye(3), [0, 0, 0, 1]),
    (np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]), [np.sqrt(0.5), 0, 0, np.sqrt(0.5)]),  # x 90
    (np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]]), [0, np.sqrt(0.5), 0, np.sqrt(0.5)]),  # y 90
    (np.array([[-1, 0, 0], [0, -1, 0], [0, 0, 1]]), [0, 0, 1, 0]),                       # z 180
    (np.array([[np.cos(0.3), -np.sin(0.3), 0], [np.sin(0.3), np.cos(0.3), 0], [0, 0, 1]]),
     [0, 0, np.sin(0.15), np.cos(0.15)]),                                                  # z 0.3
]


def test_quaternions_match_the_closed_form():
    R = np.stack([r for r, _ in CLOSED_FORM]).astype(float)
    q = np.array([q for _, q in CLOSED_FORM], float)
    np.testing.assert_allclose(trajectory_io.R_to_quat_xyzw(R), q, atol=1e-12)
    np.testing.assert_allclose(trajectory_io.quat_xyzw_to_R(q), R, atol=1e-12)
    np.testing.assert_allclose(trajectory_io.quat_xyzw_to_R(-3 * q), R, atol=1e-12)  # any norm


def test_quaternions_have_nonnegative_w_and_round_trip(rng):
    R = rotation_from_rotvec(rng.normal(size=(50, 3)) * 2)
    q = trajectory_io.R_to_quat_xyzw(R)
    assert (q[:, 3] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(trajectory_io.quat_xyzw_to_R(q), R, atol=1e-12)


def test_ground_truth_loaders_read_through_trajectory_io(tmp_path, rng):
    """sim.routes reads TUM / KITTI ground truth with the same reader as the map store."""
    from da3_ros.sim.routes import load_trajectory
    T, stamps = _poses(rng), np.arange(30) * 0.1 + 5
    trajectory_io.write_tum(tmp_path / 'gt.tum', stamps, T)
    trajectory_io.write_kitti(tmp_path / 'gt.txt', T)
    tum, kitti = load_trajectory(tmp_path / 'gt.tum'), load_trajectory(tmp_path / 'gt.txt')
    np.testing.assert_allclose(tum.T_world_cam, T, atol=1e-6)
    np.testing.assert_allclose(tum.stamps_s, stamps, atol=1e-6)
    np.testing.assert_allclose(kitti.T_world_cam, T, atol=1e-6)
    np.testing.assert_allclose(kitti.stamps_s, np.arange(30) / 10.0)
