"""Sim(3) algebra against plain 4x4 matrix algebra and GTSAM's own Similarity3."""
import gtsam
import numpy as np

from da3_ros.geometry.sim3 import Sim3, invert_se3, rotation_from_rotvec
from da3_ros.slam.pose_graph import from_gtsam, to_gtsam


def random_sim3(rng) -> Sim3:
    R = rotation_from_rotvec(rng.normal(size=(1, 3)))[0]
    return Sim3(float(np.exp(rng.normal(0, 0.5))), R, rng.normal(size=3) * 10)


def test_sim3_matches_matrix_algebra(rng):
    A, B = random_sim3(rng), random_sim3(rng)
    p = rng.normal(size=(50, 3))
    p_h = np.column_stack([p, np.ones(50)])
    np.testing.assert_allclose(A.apply(p), (A.matrix() @ p_h.T).T[:, :3], atol=1e-9)
    np.testing.assert_allclose((A @ B).matrix(), A.matrix() @ B.matrix(), atol=1e-9)
    np.testing.assert_allclose(A.inverse().matrix(), np.linalg.inv(A.matrix()), atol=1e-9)
    np.testing.assert_allclose(Sim3.from_matrix(A.matrix()).matrix(), A.matrix(), atol=1e-9)


def test_rotation_from_rotvec_is_orthonormal_and_has_its_angle(rng):
    rv = rng.normal(size=(20, 3))
    R = rotation_from_rotvec(rv)
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.tile(np.eye(3), (20, 1, 1)),
                               atol=1e-12)
    angle = np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1))
    np.testing.assert_allclose(angle, np.linalg.norm(rv, axis=1) % (2 * np.pi), atol=1e-9)


def test_invert_se3_equals_matrix_inverse(rng):
    T = np.tile(np.eye(4), (5, 1, 1))
    T[:, :3, :3] = rotation_from_rotvec(rng.normal(size=(5, 3)))
    T[:, :3, 3] = rng.normal(size=(5, 3))
    np.testing.assert_allclose(invert_se3(T), np.linalg.inv(T), atol=1e-12)


def test_gtsam_conversion_preserves_the_action_and_composition(rng):
    A, B = random_sim3(rng), random_sim3(rng)
    p = rng.normal(size=3)
    np.testing.assert_allclose(to_gtsam(A).transformFrom(p), A.apply(p), atol=1e-9)
    composed = from_gtsam(to_gtsam(A) * to_gtsam(B))
    np.testing.assert_allclose(composed.matrix(), A.matrix() @ B.matrix(), atol=1e-9)
    # GTSAM's tangent puts log-scale last: the scale-only prior relies on it.
    assert np.isclose(gtsam.Similarity3.Logmap(to_gtsam(A))[6], np.log(A.s))
