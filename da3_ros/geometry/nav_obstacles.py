"""Depth of a camera rig -> what Nav2 consumes: an obstacle cloud and a virtual laser scan, in
the robot's base frame, with torch ops that run on whatever device the depth is on (the GPU
path and, on CPU tensors, the host path: one code, so the two give the same numbers).

    result = nav_obstacles(depth, K, T_base_cams, cfg, confidence, sky)
    result.obstacles   # (M, 3) float32 base-frame points, voxel-averaged
    result.ranges      # (n,) float32 per bearing, REP-117 (inf: seen, free; NaN: unseen)

Steps, per (strided) pixel of every camera:
1. back-project the z-depth through K (geometry.packed_points.back_project_views), map it into
   the base frame by T_base_cam; keep finite depth > 0, confidence >= min_confidence, not sky;
2. height above the ground: z - ground_height_m (ground_fit 'flat': the base frame's xy plane
   shifted by ground_height_m), or the signed distance to a plane fitted by RANSAC to the
   points within ransac_band_m of that flat ground (ground_fit 'ransac': sloped ground, a
   pitched rig); fall back to flat when too few points or no near-horizontal plane;
3. obstacle points: height in [min_height_m, max_height_m] (the ground band below
   min_height_m is removed) and horizontal range sqrt(x^2 + y^2) in [range_min_m, range_max_m];
4. obstacle cloud: those points averaged per voxel of voxel_size_m (0: all points);
5. scan: bearings atan2(y, x) binned at angle_min + i * angle_increment (nearest bin); per
   bin the smallest horizontal range of the obstacle points (before the voxel step); a bin that
   no valid point (any height, range >= range_min_m) falls in is unseen: NaN; a seen bin
   without an obstacle up to range_max_m is +inf (REP-117: Nav2 clears along it with
   inf_is_valid). A span of 2 pi wraps: n = round(2 pi / increment) bins tile the circle.

Steps 1-3 and 5 have static shapes and no host synchronisation; the voxel step and the RANSAC
fit read a data-dependent count back (one synchronisation each).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from da3_ros.geometry.packed_points import back_project_views, voxel_groups

GROUND_FITS = ('flat', 'ransac')
RANSAC_HYPOTHESES = 64
RANSAC_SAMPLE = 4096          # candidate points the hypotheses are scored on
RANSAC_MIN_POINTS = 50
RANSAC_MAX_TILT_DEG = 30.0    # a fitted ground plane is within this of the base frame's xy


@dataclass(frozen=True)
class NavConfig:
    """Obstacle extraction settings (metres, radians); see the module docstring."""

    min_height_m: float = 0.05
    max_height_m: float = 1.0
    ground_height_m: float = 0.0
    ground_fit: str = 'flat'
    ransac_band_m: float = 0.3
    min_confidence: float | None = None
    stride: int = 1
    range_min_m: float = 0.1
    range_max_m: float = 5.0
    voxel_size_m: float = 0.05
    angle_min: float = -math.pi
    angle_max: float = math.pi
    angle_increment: float = math.pi / 360

    def __post_init__(self):
        if not self.min_height_m < self.max_height_m:
            raise ValueError(f'need min_height_m < max_height_m, got {self.min_height_m}, '
                             f'{self.max_height_m}')
        if not 0.0 <= self.range_min_m < self.range_max_m:
            raise ValueError(f'need 0 <= range_min_m < range_max_m, got {self.range_min_m}, '
                             f'{self.range_max_m}')
        if self.ground_fit not in GROUND_FITS:
            raise ValueError(f'ground_fit must be one of {GROUND_FITS}, got {self.ground_fit!r}')
        if self.stride < 1 or self.voxel_size_m < 0 or self.angle_increment <= 0:
            raise ValueError('need stride >= 1, voxel_size_m >= 0, angle_increment > 0')
        if not self.angle_min < self.angle_max:
            raise ValueError(f'need angle_min < angle_max, got {self.angle_min}, '
                             f'{self.angle_max}')


class ScanGeometry(NamedTuple):
    """The bins of a scan: angle i = angle_min + i * angle_increment, i < count; angle_max is
    the last bin's angle (sensor_msgs/LaserScan); wraps: the bins tile the full circle."""

    angle_min: float
    angle_max: float
    angle_increment: float
    count: int
    wraps: bool


def scan_geometry(cfg: NavConfig) -> ScanGeometry:
    """The scan's bins from cfg's angles: a span of 2 pi (or more) gives round(2 pi /
    increment) bins that tile the circle (increment adjusted to 2 pi / count, no bin twice);
    else floor(span / increment) + 1 bins from angle_min."""
    span = cfg.angle_max - cfg.angle_min
    if span >= 2 * math.pi - 1e-9:
        count = max(1, round(2 * math.pi / cfg.angle_increment))
        inc = 2 * math.pi / count
        return ScanGeometry(cfg.angle_min, cfg.angle_min + (count - 1) * inc, inc, count, True)
    count = math.floor(span / cfg.angle_increment + 1e-9) + 1
    return ScanGeometry(cfg.angle_min, cfg.angle_min + (count - 1) * cfg.angle_increment,
                        cfg.angle_increment, count, False)


class NavResult(NamedTuple):
    obstacles: Tensor     # (M, 3) float32, base frame
    ranges: Tensor        # (count,) float32, REP-117
    scan: ScanGeometry
    ground: Tensor | None  # (4,) float64 plane (nx, ny, nz, d) that RANSAC fitted, or None


def base_frame_points(depth: Tensor, K: Tensor, T_base_cams: Tensor,
                      confidence: Tensor | None = None, sky: Tensor | None = None,
                      min_confidence: float | None = None, stride: int = 1
                      ) -> tuple[Tensor, Tensor]:
    """(xyz (S * n, 3) float32 in the base frame, valid (S * n,) bool) of every strided pixel.

    depth: (S, H, W) z-depth, metres; K: (S, 3, 3); T_base_cams: (S, 4, 4) camera -> base;
    confidence (S, H, W) or None with min_confidence; sky (S, H, W) bool (True dropped) or None
    """
    xyz_cam = back_project_views(depth, K, stride)                      # (S, h, w, 3)
    z = xyz_cam[..., 2]
    valid = torch.isfinite(z) & (z > 0)
    if confidence is not None and min_confidence is not None:
        valid &= confidence[:, ::stride, ::stride] >= min_confidence
    if sky is not None:
        valid &= ~sky[:, ::stride, ::stride]
    T = T_base_cams.to(xyz_cam.device, torch.float64)[:, None, None]     # (S, 1, 1, 4, 4)
    p = torch.nan_to_num(xyz_cam.double(), nan=0.0, posinf=0.0, neginf=0.0)
    xyz = torch.stack([T[..., i, 0] * p[..., 0] + T[..., i, 1] * p[..., 1]
                       + T[..., i, 2] * p[..., 2] + T[..., i, 3] for i in range(3)], dim=-1)
    return xyz.float().reshape(-1, 3), valid.reshape(-1)


def fit_ground_plane(xyz: Tensor, candidates: Tensor, threshold_m: float) -> Tensor | None:
    """RANSAC plane through the candidate points: (4,) float64 (nx, ny, nz, d) with n a unit
    normal pointing up (nz > 0), height = n . p + d; None when fewer than RANSAC_MIN_POINTS
    candidates or no hypothesis within RANSAC_MAX_TILT_DEG of horizontal. Deterministic
    (fixed seed); the best hypothesis is refined by a least-squares fit to its inliers."""
    points = xyz[candidates].double()                                   # synchronises
    m = points.shape[0]
    if m < RANSAC_MIN_POINTS:
        return None
    sample = points[torch.linspace(0, m - 1, min(m, RANSAC_SAMPLE),
                                   device=points.device).long()]
    g = torch.Generator().manual_seed(0)
    picks = torch.randint(0, len(sample), (RANSAC_HYPOTHESES, 3), generator=g)
    p0, p1, p2 = (sample[picks[:, i].to(sample.device)] for i in range(3))
    normal = torch.linalg.cross(p1 - p0, p2 - p0)
    length = normal.norm(dim=1, keepdim=True)
    normal = normal / length.clamp_min(1e-12)
    normal = normal * torch.where(normal[:, 2:3] < 0, -1.0, 1.0)
    d = -(normal * p0).sum(dim=1)
    ok = (length[:, 0] > 1e-9) & (normal[:, 2] >= math.cos(math.radians(RANSAC_MAX_TILT_DEG)))
    inliers = ((sample @ normal.T + d).abs() <= threshold_m).sum(dim=0)
    score = torch.where(ok, inliers, -1)
    best = int(score.argmax())
    if int(score[best]) < 3:
        return None
    near = points[(points @ normal[best] + d[best]).abs() <= threshold_m]
    centroid = near.mean(dim=0)
    n = torch.linalg.svd(near - centroid, full_matrices=False).Vh[-1]
    n = n if n[2] > 0 else -n
    if n[2] < math.cos(math.radians(RANSAC_MAX_TILT_DEG)):
        return None
    return torch.cat([n, -(n * centroid).sum()[None]])


def voxel_means(xyz: Tensor, voxel_size_m: float) -> Tensor:
    """(N, 3) float32 -> one point per occupied voxel of edge voxel_size_m, the mean (float64
    sums), in ascending voxel order (x index, then y, then z); synchronises (unique)."""
    if voxel_size_m <= 0 or xyz.shape[0] == 0:
        return xyz
    inverse, counts = voxel_groups(xyz, voxel_size_m)
    sums = torch.zeros(len(counts), 3, dtype=torch.float64, device=xyz.device)
    sums.index_add_(0, inverse, xyz.double())
    return (sums / counts[:, None]).float()


def scan_ranges(xyz: Tensor, r: Tensor, seen: Tensor, obstacle: Tensor,
                scan: ScanGeometry) -> Tensor:
    """(count,) float32: per bin the smallest horizontal range r of the obstacle points, +inf
    for a bin with seen points only, NaN for a bin without any (static shapes, no sync).
    xyz (N, 3) base frame, r (N,) its horizontal range, seen / obstacle (N,) bool."""
    n = scan.count
    theta = torch.atan2(xyz[:, 1].double(), xyz[:, 0].double())
    index = torch.round((theta - scan.angle_min) / scan.angle_increment).to(torch.int64)
    if scan.wraps:
        index = torch.remainder(index, n)
    inside = (index >= 0) & (index < n)
    spare = torch.full_like(index, n)                                   # the dump bin
    seen_bins = torch.zeros(n + 1, dtype=torch.bool, device=xyz.device)
    seen_bins[torch.where(seen & inside, index, spare)] = True
    ranges = torch.full((n + 1,), math.inf, dtype=torch.float32, device=xyz.device)
    ranges.scatter_reduce_(0, torch.where(obstacle & inside, index, spare),
                           torch.where(obstacle, r, math.inf), 'amin')
    return torch.where(seen_bins[:n], ranges[:n], math.nan)


def nav_obstacles(depth: Tensor, K: Tensor, T_base_cams: Tensor, cfg: NavConfig,
                  confidence: Tensor | None = None, sky: Tensor | None = None,
                  want_cloud: bool = True) -> NavResult:
    """Obstacle cloud and scan of S views (arguments as base_frame_points; see the module
    docstring). want_cloud False skips the voxel step (obstacles then empty)."""
    xyz, valid = base_frame_points(depth, K, T_base_cams, confidence, sky, cfg.min_confidence,
                                   cfg.stride)
    height = xyz[:, 2] - cfg.ground_height_m
    plane = None
    if cfg.ground_fit == 'ransac':
        band = valid & (height.abs() <= cfg.ransac_band_m)
        plane = fit_ground_plane(xyz, band, max(0.01, 0.5 * cfg.min_height_m))
        if plane is not None:
            height = (xyz.double() @ plane[:3] + plane[3]).float()
    r = torch.hypot(xyz[:, 0], xyz[:, 1])
    seen = valid & (r >= cfg.range_min_m)
    obstacle = (seen & (r <= cfg.range_max_m) & (height >= cfg.min_height_m)
                & (height <= cfg.max_height_m))
    ranges = scan_ranges(xyz, r, seen, obstacle, scan := scan_geometry(cfg))
    cloud = voxel_means(xyz[obstacle], cfg.voxel_size_m) if want_cloud else xyz[:0]
    return NavResult(cloud, ranges, scan, plane)
