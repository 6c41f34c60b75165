"""Similarity transforms Sim(3): x_a = s * R @ x_b + t, and batched SE(3) helpers.

A `Sim3` named `T_a_b` maps points from frame b into frame a. Chunk
frames of the SLAM are related to the world by a Sim(3) because every DA3 chunk has its
own (unknown) scale; camera poses inside one chunk are rigid (SE(3), 4x4 matrices).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sim3:
    """x_a = s * R @ x_b + t.

    s: scale (> 0), unitless ratio of frame-a units to frame-b units
    R: (3, 3) float64 rotation
    t: (3,) float64 translation, frame-a units
    """

    s: float
    R: np.ndarray
    t: np.ndarray

    def __post_init__(self):
        if not self.s > 0:
            raise ValueError(f'Sim3 scale must be > 0, got {self.s}')
        if np.shape(self.R) != (3, 3) or np.shape(self.t) != (3,):
            raise ValueError(f'Sim3 needs R (3, 3) and t (3,), got {np.shape(self.R)}, '
                             f'{np.shape(self.t)}')

    @staticmethod
    def identity() -> Sim3:
        return Sim3(1.0, np.eye(3), np.zeros(3))

    @staticmethod
    def from_matrix(M: np.ndarray) -> Sim3:
        """(4, 4) [[s R, t], [0, 1]] -> Sim3."""
        s = float(np.cbrt(np.linalg.det(M[:3, :3])))
        return Sim3(s, M[:3, :3] / s, np.array(M[:3, 3], np.float64))

    def matrix(self) -> np.ndarray:
        """(4, 4) float64 [[s R, t], [0, 1]]."""
        M = np.eye(4)
        M[:3, :3] = self.s * self.R
        M[:3, 3] = self.t
        return M

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points in frame b -> (..., 3) in frame a (float64)."""
        return self.s * (np.asarray(points, np.float64) @ self.R.T) + self.t

    def __matmul__(self, other: Sim3) -> Sim3:
        """T_a_b @ T_b_c = T_a_c."""
        return Sim3(self.s * other.s, self.R @ other.R, self.s * self.R @ other.t + self.t)

    def inverse(self) -> Sim3:
        R_inv = self.R.T
        return Sim3(1.0 / self.s, R_inv, -(R_inv @ self.t) / self.s)

    def rotation_angle_rad(self) -> float:
        return rotation_angle_rad(self.R)

    def transform_poses(self, T_b_cam: np.ndarray) -> np.ndarray:
        """Re-anchor rigid camera poses: (N, 4, 4) cam -> b  ->  (N, 4, 4) cam -> a.

        The scale goes into the translation only, so the result stays a rigid pose in
        frame-a units: R' = R R_c, t' = s R t_c + t.
        """
        out = np.array(T_b_cam, np.float64, copy=True)
        out[:, :3, :3] = self.R @ out[:, :3, :3]
        out[:, :3, 3] = self.apply(out[:, :3, 3])
        return out


def rotation_angle_rad(R: np.ndarray) -> float:
    """Angle of a (3, 3) rotation, radians, in [0, pi]."""
    return float(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)))


def invert_se3(T: np.ndarray) -> np.ndarray:
    """(..., 4, 4) rigid transforms -> their inverses [R^T, -R^T t; 0 0 0 1], float64,
    vectorised: the package's one rigid inverse on arrays (the network has its own in torch,
    model.camera.invert_rigid, for export)."""
    T = np.asarray(T, np.float64)
    R_inv = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = R_inv
    out[..., :3, 3] = -np.einsum('...ij,...j->...i', R_inv, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def rotation_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """(N, 3) axis * angle (rad) -> (N, 3, 3) rotations (Rodrigues, vectorised)."""
    rotvec = np.atleast_2d(np.asarray(rotvec, np.float64))
    angle = np.linalg.norm(rotvec, axis=1)
    axis = rotvec / np.maximum(angle, 1e-300)[:, None]
    K = np.zeros((len(rotvec), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = axis[:, 2], -axis[:, 1], axis[:, 0]
    sin, cos = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + sin * K + (1.0 - cos) * (K @ K)
