"""Trajectory files: TUM ('t x y z qx qy qz qw') and KITTI (12 numbers, row-major 3x4),
written atomically (temporary file in the same folder, then os.replace)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from da3_ros.errors import InputError


def atomic_write_bytes(path: Path, data: bytes):
    """Write `data` to `path` so readers see the old file or the complete new one, never a
    partial one (rename within one filesystem is atomic on POSIX)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def R_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations -> (F, 4) unit quaternions x, y, z, w with w >= 0."""
    m = R
    tr = np.trace(m, axis1=1, axis2=2)
    # Shepperd: pick the largest of 4 candidates per rotation for numerical stability.
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], 1)
    pick = np.argmax(cand, 1)
    q = np.zeros((len(R), 4))
    for case in range(4):                 # 4 formula branches, each vectorised over frames
        sel = pick == case
        r = m[sel]
        if case == 0:
            s = np.sqrt(1.0 + cand[sel, 0]) * 2
            q[sel] = np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s,
                               (r[:, 1, 0] - r[:, 0, 1]) / s, 0.25 * s], 1)
        else:
            i, j, k = case - 1, case % 3, (case + 1) % 3
            s = np.sqrt(1.0 + r[:, i, i] - r[:, j, j] - r[:, k, k]) * 2
            v = np.zeros((sel.sum(), 4))
            v[:, i] = 0.25 * s
            v[:, j] = (r[:, j, i] + r[:, i, j]) / s
            v[:, k] = (r[:, k, i] + r[:, i, k]) / s
            v[:, 3] = (r[:, k, j] - r[:, j, k]) / s
            q[sel] = v
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(q[:, 3:] < 0, -q, q)


def quat_xyzw_to_R(q: np.ndarray) -> np.ndarray:
    """(F, 4) quaternions x, y, z, w -> (F, 3, 3) rotations."""
    x, y, z, w = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], 1)


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
    rows = np.atleast_2d(np.loadtxt(path)).reshape(-1, 3, 4)
    T = np.tile(np.eye(4), (len(rows), 1, 1))
    T[:, :3] = rows
    return T
