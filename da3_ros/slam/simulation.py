"""Ground-truth trajectories for simulation: the synthetic city grid and
the real GT files in shared/data/trajectories (KITTI, TUM RGB-D, EuRoC).

All trajectories are camera poses T_world_cam (OpenCV camera: x right, y down, z forward),
metres, with timestamps in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from da3_ros.geometry.sim3 import rotation_from_rotvec
from da3_ros.slam.trajectory_io import quat_xyzw_to_R

BLOCK_M = 250.0
CITY_WAYPOINTS = [(0, 0), (4, 0), (4, 2), (0, 2), (0, 0), (2, 0), (2, 2), (0, 2), (0, 1)]


@dataclass(frozen=True)
class GroundTruth:
    """name; stamps_s: (F,) seconds; T_world_cam: (F, 4, 4) float64 camera -> world, metres."""

    name: str
    stamps_s: np.ndarray
    T_world_cam: np.ndarray

    def __len__(self) -> int:
        return len(self.stamps_s)

    @property
    def positions(self) -> np.ndarray:
        return self.T_world_cam[:, :3, 3]

    @property
    def length_m(self) -> float:
        return float(np.linalg.norm(np.diff(self.positions, axis=0), axis=1).sum())

    def subsample(self, every: int) -> GroundTruth:
        return GroundTruth(self.name, self.stamps_s[::every], self.T_world_cam[::every])


def _fillet_polyline(corners: np.ndarray, radius_m: float, arc_steps: int = 32) -> np.ndarray:
    """(K, 2) corner points -> dense (M, 2) polyline with circular fillets at 90-degree turns."""
    out = [corners[0]]
    for prev, corner, nxt in zip(corners[:-2], corners[1:-1], corners[2:], strict=True):
        d_in = (corner - prev) / np.linalg.norm(corner - prev)
        d_out = (nxt - corner) / np.linalg.norm(nxt - corner)
        centre = corner - radius_m * d_in + radius_m * d_out
        phi = np.linspace(0.0, np.pi / 2, arc_steps)[:, None]
        out.extend(centre - radius_m * d_out * np.cos(phi) + radius_m * d_in * np.sin(phi))
    out.append(corners[-1])
    return np.asarray(out)


def look_along(forward: np.ndarray) -> np.ndarray:
    """(F, 3) forward directions -> (F, 3, 3) R_world_cam for an OpenCV camera upright in a
    z-up world."""
    up = np.array([0.0, 0.0, 1.0])
    z = forward / np.linalg.norm(forward, axis=1, keepdims=True)
    x = np.cross(z, up)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.stack([x, np.cross(z, x), z], axis=2)


def city_grid(block_m: float = BLOCK_M, spacing_m: float = 1.0, fillet_m: float = 15.0,
              jitter_deg: float = 0.2, fps: float = 10.0, seed: int = 0) -> GroundTruth:
    """The ~4.7 km 'city-grid-4.7km' loop with revisits after 3 km; a
    smaller block_m gives the same shape at a smaller scale (fast tests)."""
    dense = _fillet_polyline(np.asarray(CITY_WAYPOINTS, float) * block_m, fillet_m)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))]
    s = np.arange(0.0, arc[-1], spacing_m)
    xy = np.stack([np.interp(s, arc, dense[:, 0]), np.interp(s, arc, dense[:, 1])], axis=1)
    z = 4 * np.sin(2 * np.pi * xy[:, 0] / 1500) + 3 * np.sin(2 * np.pi * xy[:, 1] / 900)
    position = np.column_stack([xy, z + 1.65])
    forward = np.gradient(position, axis=0)
    R = look_along(forward)
    jitter = np.random.default_rng(seed).normal(0, np.deg2rad(jitter_deg), (len(s), 3))
    T = np.tile(np.eye(4), (len(s), 1, 1))
    T[:, :3, :3] = R @ rotation_from_rotvec(jitter)
    T[:, :3, 3] = position
    return GroundTruth(f'city-grid-{block_m:g}m-blocks', np.arange(len(s)) / fps, T)


def load_kitti(path: Path, fps: float = 10.0) -> GroundTruth:
    """KITTI odometry GT (12 numbers per line, T_W_C0 row-major 3x4); stamps from
    NN_times.txt next to it when present, else frame / fps."""
    path = Path(path)
    rows = np.loadtxt(path).reshape(-1, 3, 4)
    T = np.tile(np.eye(4), (len(rows), 1, 1))
    T[:, :3] = rows
    times = path.with_name(path.stem + '_times.txt')
    stamps = np.loadtxt(times) if times.exists() else np.arange(len(T)) / fps
    return GroundTruth(f'kitti-{path.stem}', stamps[:len(T)], T)


def load_tum(path: Path) -> GroundTruth:
    """TUM format 'stamp tx ty tz qx qy qz qw' (T_W_C), comments with '#'."""
    data = np.loadtxt(path, comments='#')
    T = np.tile(np.eye(4), (len(data), 1, 1))
    T[:, :3, :3] = quat_xyzw_to_R(data[:, 4:8])
    T[:, :3, 3] = data[:, 1:4]
    return GroundTruth(Path(path).stem, data[:, 0], T)
