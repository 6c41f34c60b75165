"""Trajectory files: TUM ('t x y z qx qy qz qw') and KITTI (12 numbers, row-major 3x4),
written atomically (temporary file in the same folder, then os.replace)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from transforms3d.quaternions import mat2quat, quat2mat

from da3_ros.errors import InputError
from da3_ros.files import write_atomic as atomic_write_bytes


def R_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations -> (F, 4) unit quaternions x, y, z, w with w >= 0 (transforms3d,
    whose quaternions are w, x, y, z)."""
    R = np.asarray(R, np.float64).reshape(-1, 3, 3)
    q_wxyz = np.array([mat2quat(r) for r in R]).reshape(-1, 4)
    q_wxyz *= np.where(q_wxyz[:, :1] < 0, -1.0, 1.0)
    return q_wxyz[:, [1, 2, 3, 0]]


def quat_xyzw_to_R(q: np.ndarray) -> np.ndarray:
    """(F, 4) quaternions x, y, z, w (any nonzero norm) -> (F, 3, 3) rotations."""
    q = np.asarray(q, np.float64).reshape(-1, 4)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.array([quat2mat(v) for v in q[:, [3, 0, 1, 2]]]).reshape(-1, 3, 3)


def _check(T: np.ndarray):
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise InputError(f'poses must be (F, 4, 4), got {T.shape}')


def write_tum(path: Path, stamps_s: np.ndarray, T_world_cam: np.ndarray):
    """stamps_s: (F,) seconds; T_world_cam: (F, 4, 4) camera -> world, metres."""
    _check(T_world_cam)
    quat_xyzw = R_to_quat_xyzw(T_world_cam[:, :3, :3])
    rows = np.column_stack([stamps_s, T_world_cam[:, :3, 3], quat_xyzw])
    lines = ['# timestamp tx ty tz qx qy qz qw'] + [' '.join(f'{v:.9f}' for v in r) for r in rows]
    atomic_write_bytes(path, ('\n'.join(lines) + '\n').encode())


def read_tum(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """-> stamps_s (F,), T_world_cam (F, 4, 4)."""
    data = np.atleast_2d(np.loadtxt(path, comments='#'))
    T = np.tile(np.eye(4), (len(data), 1, 1))
    T[:, :3, :3] = quat_xyzw_to_R(data[:, 4:8])
    T[:, :3, 3] = data[:, 1:4]
    return data[:, 0], T


def write_kitti(path: Path, T_world_cam: np.ndarray):
    """(F, 4, 4) -> one line of 12 numbers (row-major top 3x4) per frame."""
    _check(T_world_cam)
    rows = T_world_cam[:, :3, :].reshape(-1, 12)
    atomic_write_bytes(path, ('\n'.join(' '.join(f'{v:.9e}' for v in r) for r in rows)
                              + '\n').encode())


def read_kitti(path: Path) -> np.ndarray:
    """-> T_world_cam (F, 4, 4) from one line of 12 numbers (row-major top 3x4) per frame."""
    rows = np.atleast_2d(np.loadtxt(path)).reshape(-1, 3, 4)
    T = np.tile(np.eye(4), (len(rows), 1, 1))
    T[:, :3] = rows
    return T
