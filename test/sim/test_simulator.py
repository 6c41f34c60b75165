"""The simulator (da3_ros/sim/) against closed forms: terrain depth against a ray-plane
intersection, the look-alike shift against arithmetic, and the evo-backed metrics against
trajectories whose aligned error is known."""
from __future__ import annotations

import numpy as np
import pytest

from da3_ros.geometry.sim3 import rotation_from_rotvec
from da3_ros.sim.evaluation import ate_rmse_m, rpe_per_100m
from da3_ros.sim.predictor import SimCamera, terrain_ground_depth
from da3_ros.sim.routes import LookAlikeStretch


def test_terrain_depth_on_a_tilted_plane_is_the_ray_plane_intersection():
    """Ground z = 0.1 x - 0.05 y: the marched depth equals the closed-form intersection."""
    a, b = 0.1, -0.05
    T = np.eye(4)
    T[:3, :3] = rotation_from_rotvec(np.array([[np.deg2rad(-95.0), 0.0, 0.0]]))[0]  # look +y
    T[:3, 3] = [3.0, -2.0, 0.1 * 3.0 - 0.05 * -2.0 + 1.65]
    cam = SimCamera(hw=(6, 8))
    uv1 = np.stack([np.tile(np.arange(8), 6), np.repeat(np.arange(6), 8), np.ones(48)], 1)
    rays = uv1 @ np.linalg.inv(cam.K()).T                                         # (P, 3)
    t = terrain_ground_depth(T[None], rays[None], np.zeros((1, 3)),
                             lambda xy: a * xy[:, 0] + b * xy[:, 1])[0, 0]
    d, o = rays @ T[:3, :3].T, T[:3, 3]
    closed = (a * o[0] + b * o[1] - o[2]) / (d[:, 2] - a * d[:, 0] - b * d[:, 1])
    hit = (closed > 0.3) & (closed < 80)
    assert hit.sum() > 10 and np.isinf(t[~hit]).all()
    assert np.allclose(t[hit], closed[hit], rtol=1e-4)


def test_look_alike_stretch_maps_places_whole_periods_back():
    stretch = LookAlikeStretch((10.0, 0.0), (0.0, 1.0), 300.0, 50.0, 5.0)
    p = np.array([[10.0, 0.0, 0], [12.0, 120.0, 1], [10.0, 299.0, 0], [30.0, 120.0, 0],
                  [10.0, 320.0, 0]])
    assert np.allclose(stretch.shift(p), [[0, 0, 0], [0, -100, 0], [0, -250, 0], [0, 0, 0],
                                          [0, 0, 0]])


def poses(xyz: np.ndarray) -> np.ndarray:
    T = np.tile(np.eye(4), (len(xyz), 1, 1))
    T[:, :3, 3] = xyz
    return T


def test_ate_and_rpe_of_a_similarity_transformed_copy_are_zero():
    t = np.linspace(0.0, 2 * np.pi, 200)
    gt = poses(np.stack([100 * np.cos(t), 60 * np.sin(t), 5 * np.sin(3 * t)], 1))
    S = np.eye(4)
    S[:3, :3] = 2.5 * rotation_from_rotvec(np.array([[0.3, -0.2, 1.1]]))[0]
    S[:3, 3] = [7.0, -3.0, 2.0]
    est = gt.copy()
    est[:, :3, 3] = gt[:, :3, 3] @ S[:3, :3].T + S[:3, 3]
    est[:, :3, :3] = S[:3, :3] / 2.5 @ gt[:, :3, :3]
    stamps = np.arange(len(gt), dtype=float)
    assert ate_rmse_m(gt, est, stamps) == pytest.approx(0.0, abs=1e-6)
    rpe_m, rpe_deg = rpe_per_100m(gt, est, stamps)
    assert rpe_m == pytest.approx(0.0, abs=1e-6) and rpe_deg == pytest.approx(0.0, abs=1e-4)


def test_ate_of_a_symmetric_vertical_error_is_the_closed_form():
    """Each place of a flat grid visited twice, once e above and once e below it: the Sim(3)
    alignment keeps the rotation (no cross-covariance with z) and shrinks the scale to
    c = v / (v + e^2), v the planar variance, so ATE^2 = (c - 1)^2 v + c^2 e^2."""
    gx, gy = np.meshgrid(np.linspace(0.0, 90.0, 7), np.linspace(0.0, 60.0, 5))
    xy, e = np.repeat(np.stack([gx.ravel(), gy.ravel()], 1), 2, axis=0), 0.4
    z = np.tile([e, -e], len(xy) // 2)
    gt = poses(np.column_stack([xy, np.zeros(len(xy))]))
    est = poses(np.column_stack([xy, z]))
    v = np.mean(np.sum((xy - xy.mean(0)) ** 2, axis=1))
    c = v / (v + e**2)
    expected = np.sqrt((c - 1) ** 2 * v + c**2 * e**2)
    assert ate_rmse_m(gt, est, np.arange(len(xy), dtype=float)) == pytest.approx(expected,
                                                                              rel=1e-6)
