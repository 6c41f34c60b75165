"""Depth images -> filtered 3-D points, moved between frames, fused and voxel-averaged (numpy).

The host path of every point cloud the package makes: the depth node's per-camera and fused
clouds, the SLAM node's map cloud and the offline writers. `geometry/packed_points.py` does the
same arithmetic with torch on the GPU. Message conversion (PointCloud2) is
`da3_ros/ros/pointcloud.py`; PLY files are `geometry/ply.py`.

Pixel (u, v) is (column, row) with its centre at integer coordinates, as in the official code
and CameraInfo K: a depth z at (u, v) back-projects to z K^-1 [u, v, 1]. Filters: confidence
threshold, sky mask, pixel stride, min/max range and voxel averaging. All vectorised.
"""

from dataclasses import dataclass

import numpy as np

from da3_ros.errors import ConfigError, PointsError
from da3_ros.geometry.voxel_keys import VOXEL_KEY_BIAS, pack_voxel_keys

CAUSES = ('shape_mismatch', 'bad_transform')


@dataclass(frozen=True)
class CloudConfig:
    """Which back-projected pixels become cloud points."""

    min_confidence: float | None = None  # keep confidence >= this; None keeps all
    min_range_m: float = 0.0  # Euclidean distance from the camera centre
    max_range_m: float = float('inf')
    stride: int = 1  # use every stride-th row and column
    voxel_size_m: float = 0.0  # average points per cubic voxel of this edge; 0 = off

    def __post_init__(self):
        if self.stride < 1:
            raise ConfigError(f'stride must be >= 1, got {self.stride}')
        if not 0.0 <= self.min_range_m < self.max_range_m:
            raise ConfigError(f'need 0 <= min_range_m < max_range_m, got '
                              f'{self.min_range_m}, {self.max_range_m}')
        if not (self.voxel_size_m >= 0.0 and np.isfinite(self.voxel_size_m)):
            raise ConfigError(f'voxel_size_m must be finite and >= 0, got {self.voxel_size_m}')


DEFAULT_CLOUD = CloudConfig()


@dataclass(frozen=True)
class Points:
    """N points in one frame.

    xyz: (N, 3) float32, metres
    rgb: (N, 3) uint8 or None
    confidence: (N,) float32 or None
    """

    xyz: np.ndarray
    rgb: np.ndarray | None = None
    confidence: np.ndarray | None = None

    def take(self, index: np.ndarray) -> 'Points':
        """The subset at `index` (bool mask or integer indices)."""
        return Points(
            self.xyz[index],
            None if self.rgb is None else self.rgb[index],
            None if self.confidence is None else self.confidence[index],
        )


def back_project(depth: np.ndarray, K: np.ndarray, stride: int = 1) -> np.ndarray:
    """Pixels (u, v) at z-depth -> camera-frame points: [X, Y, Z] = z K^-1 [u, v, 1].

    depth: (H, W) float, metres along the optical z axis
    K: (3, 3) pixels, at depth's resolution; u is the column, v the row index
    stride: sample rows and columns 0, stride, 2 stride, ... (K is not changed)
    returns (ceil(H / stride), ceil(W / stride), 3) float32, metres, camera optical frame
    """
    z = depth[::stride, ::stride].astype(np.float64)
    v = np.arange(0, depth.shape[0], stride, dtype=np.float64)[:, None]
    u = np.arange(0, depth.shape[1], stride, dtype=np.float64)[None, :]
    y_n = (v - K[1, 2]) / K[1, 1]
    x_n = (u - K[0, 2] - K[0, 1] * y_n) / K[0, 0]  # K[0, 1] is skew, 0 for most cameras
    return np.stack(np.broadcast_arrays(x_n * z, y_n * z, z), axis=-1).astype(np.float32)


def depth_to_points(
    depth: np.ndarray,
    K: np.ndarray,
    rgb: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    sky_mask: np.ndarray | None = None,
    cfg: CloudConfig = DEFAULT_CLOUD,
) -> Points:
    """Back-project valid pixels of one camera and apply cfg's filters.

    depth: (H, W) float32, metres along optical z; NaN, inf and z <= 0 are invalid
    K: (3, 3) float, pixels, at depth's resolution
    rgb: (H, W, 3) uint8 or None; confidence: (H, W) float32 or None
    sky_mask: (H, W) bool, True = sky (dropped), or None
    returns Points in the camera optical frame
    """
    if depth.ndim != 2:
        raise PointsError('shape_mismatch', f'depth must be (H, W), got {depth.shape}')
    for name, extra, shape in (('rgb', rgb, depth.shape + (3,)), ('confidence', confidence,
                               depth.shape), ('sky_mask', sky_mask, depth.shape)):
        if extra is not None and extra.shape != shape:
            raise PointsError('shape_mismatch', f'{name} is {extra.shape}, expected {shape}')
    s = cfg.stride
    xyz = back_project(depth, K, s).reshape(-1, 3)
    z = xyz[:, 2]
    keep = np.isfinite(z) & (z > 0)
    conf = None if confidence is None else confidence[::s, ::s].reshape(-1).astype(np.float32)
    if conf is not None and cfg.min_confidence is not None:
        keep &= conf >= cfg.min_confidence  # NaN confidence fails the comparison: dropped
    if sky_mask is not None:
        keep &= ~sky_mask[::s, ::s].reshape(-1)
    with np.errstate(invalid='ignore'):
        distance_m = np.linalg.norm(xyz, axis=1)
    keep &= (distance_m >= cfg.min_range_m) & (distance_m <= cfg.max_range_m)
    colours = None if rgb is None else rgb[::s, ::s].reshape(-1, 3)
    points = Points(xyz, colours, conf).take(keep)
    return voxel_downsample(points, cfg.voxel_size_m) if cfg.voxel_size_m > 0 else points


def voxel_downsample(points: Points, voxel_size_m: float) -> Points:
    """One point per occupied voxel (edge voxel_size_m): the mean xyz, rgb and confidence.

    Voxels are floor(xyz / voxel_size_m); output order is sorted by voxel index (x, then y,
    then z). geometry.packed_points.voxel_mean_records does the same on the GPU.
    """
    if voxel_size_m <= 0 or len(points.xyz) == 0:
        return points
    keys = np.floor(points.xyz / voxel_size_m).astype(np.int64)
    if np.abs(keys).max() < VOXEL_KEY_BIAS:
        # a 1-D unique of packed keys gives unique(axis=0)'s order, without its row sort
        _, inverse, counts = np.unique(pack_voxel_keys(keys), return_inverse=True,
                                       return_counts=True)
    else:
        _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)

    def mean(values: np.ndarray) -> np.ndarray:
        columns = values.reshape(len(values), -1).astype(np.float64)
        sums = [np.bincount(inverse, weights=c, minlength=len(counts)) for c in columns.T]
        return np.stack(sums, axis=1) / counts[:, None]

    rgb = None if points.rgb is None else np.round(mean(points.rgb)).astype(np.uint8)
    conf = None if points.confidence is None else mean(points.confidence)[:, 0]
    return Points(mean(points.xyz).astype(np.float32), rgb,
                  None if conf is None else conf.astype(np.float32))


def transform_points(points: Points, T_target_source: np.ndarray) -> Points:
    """Points in the source frame -> the target frame; T_target_source is (4, 4), metres."""
    T = np.asarray(T_target_source, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise PointsError('bad_transform', f'expected a finite (4, 4) transform, got {T.shape}')
    xyz = points.xyz.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    return Points(xyz.astype(np.float32), points.rgb, points.confidence)


def fuse_points(
    per_camera: list[Points], T_fixed_cams: list[np.ndarray], voxel_size_m: float = 0.0
) -> Points:
    """Per-camera points -> one cloud in the fixed frame, optionally voxel-averaged.

    T_fixed_cams: per camera a (4, 4) T_fixed_cam mapping camera-frame points into the fixed frame
    rgb / confidence survive only when every camera has them.
    """
    if len(per_camera) != len(T_fixed_cams) or not per_camera:
        raise PointsError('shape_mismatch',
                         f'{len(per_camera)} clouds vs {len(T_fixed_cams)} transforms')
    moved = [transform_points(p, T) for p, T in zip(per_camera, T_fixed_cams, strict=True)]

    def join(name: str) -> np.ndarray | None:
        parts = [getattr(p, name) for p in moved]
        return None if any(x is None for x in parts) else np.concatenate(parts)

    fused = Points(join('xyz'), join('rgb'), join('confidence'))
    return voxel_downsample(fused, voxel_size_m)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 RGB -> (N,) float32 whose bits are the uint32 0x00RRGGBB (PCL's 'rgb')."""
    c = rgb.astype(np.uint32)
    return ((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """(N,) float32 (or uint32) PCL 'rgb' -> (N, 3) uint8 RGB."""
    bits = np.ascontiguousarray(packed).view(np.uint32)
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=1).astype(np.uint8)
