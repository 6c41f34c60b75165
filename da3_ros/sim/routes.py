"""Ground-truth trajectories for simulation: the synthetic city grid, the evaluation routes
(a look-alike stretch, an opposite-direction revisit, hills) and the real GT files in
shared/data/trajectories (KITTI, TUM RGB-D, EuRoC).

All trajectories are camera poses T_world_cam (OpenCV camera: x right, y down, z forward),
metres, with timestamps in seconds. A route may carry what the simulator renders beyond the
poses: `terrain` (ground height of a z-up world, for the depth) and `look_alike` stretches
(place appearance: where different places look the same, for descriptors, depth and loop
chunks).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from da3_ros.geometry.sim3 import rotation_from_rotvec
from da3_ros.slam.trajectory_io import read_kitti, read_tum

BLOCK_M = 250.0
CITY_WAYPOINTS = [(0, 0), (4, 0), (4, 2), (0, 2), (0, 0), (2, 0), (2, 2), (0, 2), (0, 1)]


@dataclass(frozen=True)
class LookAlikeStretch:
    """A straight stretch of road whose appearance repeats every `period_m` (a highway, a
    tunnel, an office corridor): a place at arc length s along it looks like the place at
    s mod period_m, for descriptors, depth and a loop chunk's relative pose alike.

    start_xy: (2,) world metres; heading_xy: (2,) unit direction of the stretch;
    length_m: its length; half_width_m: lateral extent that belongs to it
    """

    start_xy: tuple[float, float]
    heading_xy: tuple[float, float]
    length_m: float
    period_m: float = 50.0
    half_width_m: float = 12.0

    def shift(self, positions: np.ndarray) -> np.ndarray:
        """(F, 3) world positions -> (F, 3) world shift to the place they look like."""
        u = np.asarray(self.heading_xy, np.float64)
        rel = positions[:, :2] - np.asarray(self.start_xy, np.float64)
        s = rel @ u
        lateral = np.abs(rel @ np.array([-u[1], u[0]]))
        inside = (s >= 0) & (s <= self.length_m) & (lateral <= self.half_width_m)
        along = np.where(inside, np.mod(s, self.period_m) - s, 0.0)
        return np.concatenate([along[:, None] * u, np.zeros((len(s), 1))], axis=1)


@dataclass(frozen=True)
class GroundTruth:
    """name; stamps_s: (F,) seconds; T_world_cam: (F, 4, 4) float64 camera -> world, metres.

    terrain: (M, 2) world xy -> (M,) ground height z (z-up world, metres), or None for the
        flat road 1.65 m below the camera
    look_alike: stretches whose places look like other places (see LookAlikeStretch)
    """

    name: str
    stamps_s: np.ndarray
    T_world_cam: np.ndarray
    terrain: Callable[[np.ndarray], np.ndarray] | None = None
    look_alike: tuple[LookAlikeStretch, ...] = field(default=())

    def appearance_shift(self, positions: np.ndarray) -> np.ndarray:
        """(F, 3) world positions -> (F, 3) shift to the place they look like (0 outside
        every look-alike stretch)."""
        shift = np.zeros_like(positions, dtype=np.float64)
        for stretch in self.look_alike:
            shift += stretch.shift(positions)
        return shift

    def __len__(self) -> int:
        return len(self.stamps_s)

    @property
    def positions(self) -> np.ndarray:
        return self.T_world_cam[:, :3, 3]

    @property
    def length_m(self) -> float:
        return float(np.linalg.norm(np.diff(self.positions, axis=0), axis=1).sum())

    def subsample(self, every: int) -> GroundTruth:
        return GroundTruth(self.name, self.stamps_s[::every], self.T_world_cam[::every],
                           self.terrain, self.look_alike)


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


def drive(name: str, corners_m: np.ndarray, terrain=None, look_alike=(),
          spacing_m: float = 1.0, fillet_m: float = 15.0, jitter_deg: float = 0.2,
          fps: float = 10.0, seed: int = 0) -> GroundTruth:
    """A forward camera 1.65 m above the ground along filleted corners (K, 2), world metres.

    terrain: xy (M, 2) -> z (M,) ground height, or None (flat, z = 0); the camera pitches
    with the road (it looks along the 3-D direction of travel)
    """
    dense = _fillet_polyline(np.asarray(corners_m, float), fillet_m)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))]
    s = np.arange(0.0, arc[-1], spacing_m)
    xy = np.stack([np.interp(s, arc, dense[:, 0]), np.interp(s, arc, dense[:, 1])], axis=1)
    ground = np.zeros(len(s)) if terrain is None else terrain(xy)
    position = np.column_stack([xy, ground + 1.65])
    T = np.tile(np.eye(4), (len(s), 1, 1))
    jitter = np.random.default_rng(seed).normal(0, np.deg2rad(jitter_deg), (len(s), 3))
    T[:, :3, :3] = look_along(np.gradient(position, axis=0)) @ rotation_from_rotvec(jitter)
    T[:, :3, 3] = position
    return GroundTruth(name, np.arange(len(s)) / fps, T, terrain, tuple(look_alike))


def aliasing_route(scale: float = 1.0, period_m: float = 50.0) -> GroundTruth:
    """'look-alike-corridor': a 400 m straight (x 0..400, y 0) whose appearance repeats every
    period_m, driven twice in the same direction with a 1.2 km block in between, then 250 m
    of ordinary street: 8 look-alike places per pass, true revisits only on the second pass.
    scale shrinks the whole route (tests); the period shrinks with it."""
    corners = np.array([(-50, 0), (400, 0), (400, 200), (-200, 200), (-200, 0), (400, 0),
                        (400, -250)]) * scale
    stretch = LookAlikeStretch((0.0, 0.0), (1.0, 0.0), 400.0 * scale, period_m * scale)
    return drive(f'look-alike-corridor-{scale:g}', corners, look_alike=(stretch,),
                 fillet_m=15.0 * min(1.0, 2 * scale))


def opposite_route(scale: float = 1.0, lane_m: float = 3.5) -> GroundTruth:
    """'opposite-revisit': 800 m east along y = 0, a block north, then back west along the
    opposite lane (y = -lane_m) over x 300..-200: the stretch x 0..300 is seen again after
    ~1.3 km driven the other way, and nowhere else."""
    corners = np.array([(0, 0), (800, 0), (800, 250), (300, 250), (300, -lane_m / scale),
                        (-200, -lane_m / scale)]) * scale
    return drive(f'opposite-revisit-{scale:g}', corners, fillet_m=15.0 * min(1.0, 2 * scale))


def hills(xy: np.ndarray, amplitude_m: float = 15.0) -> np.ndarray:
    """Ground height (M,) of the hilly route at world xy (M, 2): slopes up to ~13 %."""
    return (amplitude_m * np.sin(2 * np.pi * xy[:, 0] / 700.0)
            + 0.7 * amplitude_m * np.sin(2 * np.pi * xy[:, 1] / 500.0 + 1.0))


def hilly_route(block_m: float = 150.0) -> GroundTruth:
    """'hilly-grid': the city grid's shape at block_m blocks over hills(): ~2.8 km at 150 m,
    revisits after ~1.8 km; the depth sees the terrain's slope (ground not parallel to the
    camera's x-z plane where the slope changes or the camera looks sideways)."""
    amplitude = 15.0 * min(1.0, block_m / 150.0)
    return drive(f'hilly-grid-{block_m:g}m', np.asarray(CITY_WAYPOINTS, float) * block_m,
                 terrain=lambda xy: hills(xy, amplitude),
                 fillet_m=15.0 * min(1.0, block_m / 50.0))


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
    """KITTI odometry GT (slam.trajectory_io.read_kitti); stamps from NN_times.txt next to it
    when present, else frame / fps."""
    path = Path(path)
    T = read_kitti(path)
    times = path.with_name(path.stem + '_times.txt')
    stamps = np.loadtxt(times) if times.exists() else np.arange(len(T)) / fps
    return GroundTruth(f'kitti-{path.stem}', stamps[:len(T)], T)


def load_tum(path: Path) -> GroundTruth:
    """TUM GT 'stamp tx ty tz qx qy qz qw' (T_W_C; slam.trajectory_io.read_tum)."""
    stamps, T = read_tum(Path(path))
    return GroundTruth(Path(path).stem, stamps, T)


def load_trajectory(path) -> GroundTruth:
    """A TUM (8 columns) or KITTI (12 columns) ground-truth file."""
    with open(path) as f:
        first = next(line for line in f if line.strip() and not line.startswith('#'))
    return load_tum(path) if len(first.split()) == 8 else load_kitti(path)
