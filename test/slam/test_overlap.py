"""Robust Sim(3) alignment against ground truth and against evo's Umeyama."""
import numpy as np
from evo.core.geometry import umeyama_alignment

from da3_ros.geometry.sim3 import Sim3, rotation_from_rotvec
from da3_ros.slam.overlap import AlignConfig, align_points


def _scene(rng, n=4000):
    src = rng.uniform([-10, -2, 3], [10, 2, 40], size=(n, 3))      # camera-like frustum
    truth = Sim3(1.3, rotation_from_rotvec(np.array([[0.05, -0.3, 0.1]]))[0],
                 np.array([2.0, -0.5, 7.0]))
    return src, truth


def test_clean_points_equal_evo_umeyama(rng):
    src, truth = _scene(rng)
    dst = truth.apply(src) + rng.normal(0, 0.01, src.shape)
    al = align_points(src, dst, np.ones(len(src)), dst[:, 2], AlignConfig())
    R, t, s = umeyama_alignment(src.T, dst.T, with_scale=True)
    np.testing.assert_allclose(al.T_dst_src.R, R, atol=1e-4)
    np.testing.assert_allclose(al.T_dst_src.s, s, rtol=1e-4)
    np.testing.assert_allclose(al.T_dst_src.t, t, atol=1e-3)


def test_gross_outliers_do_not_move_the_estimate(rng):
    src, truth = _scene(rng)
    dst = truth.apply(src) * (1 + rng.normal(0, 0.02, (len(src), 1)))   # 2 % depth-like noise
    bad = rng.random(len(src)) < 0.3
    dst[bad] = rng.uniform(-50, 50, (bad.sum(), 3))
    al = align_points(src, dst, np.ones(len(src)), np.abs(dst[:, 2]) + 1, AlignConfig())
    err = truth.inverse() @ al.T_dst_src
    assert np.rad2deg(err.rotation_angle_rad()) < 0.2
    assert abs(np.log(err.s)) < 0.005
    assert np.linalg.norm(al.T_dst_src.t - truth.t) < 0.2
    assert 0.6 < al.inlier_ratio < 0.8              # ~70 % inliers were planted
    # plain least squares is ruined by the same outliers (why IRLS is needed)
    R, t, s = umeyama_alignment(src.T, dst.T, with_scale=True)
    assert abs(np.log(s / truth.s)) > 0.1


def test_too_few_points_returns_none(rng):
    src, truth = _scene(rng, 10)
    assert align_points(src, truth.apply(src), np.ones(10), np.ones(10), AlignConfig()) is None



def test_depth_ratio_scale_ignores_pose_stretch(rng):
    """Stretched camera translations (a scale gradient) move a chunk's points along the
    motion but leave its depths alone: the depth-ratio scale stays right."""
    src, truth = _scene(rng)
    dst = truth.apply(src)
    stretched = src * np.array([1.0, 1.0, 1.03])          # 3 % along the motion
    z_dst = rng.uniform(3, 40, len(src))
    z_src = z_dst / truth.s * np.exp(rng.normal(0, 0.01, len(src)))
    w = np.ones(len(src))
    free = align_points(stretched, dst, w, z_dst, AlignConfig())
    fixed = align_points(stretched, dst, w, z_dst, AlignConfig(), depth_src=z_src)
    assert abs(np.log(free.T_dst_src.s / truth.s)) > 0.01
    assert abs(np.log(fixed.T_dst_src.s / truth.s)) < 0.002
    assert np.rad2deg((truth.inverse() @ fixed.T_dst_src).rotation_angle_rad()) < 0.5
