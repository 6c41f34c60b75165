"""A chunk's per-view geometry in the chunk's own frame, and back-projection to points."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from da3_ros.engine.prediction import Prediction
from da3_ros.geometry.sim3 import invert_se3


@dataclass(frozen=True)
class ChunkViews:
    """Dense outputs of one chunk (S = F * N views, frame-major).

    frame_ids: (F,) int64 stream indices of the chunk's frames
    num_cameras: N
    T_chunk_cam: (S, 4, 4) float64, camera -> chunk frame, chunk units
    K: (S, 3, 3) float64 pixels at depth's resolution
    depth: (S, H, W) float32 z-depth, chunk units, NaN/<=0 invalid
    conf: (S, H, W) float32 >= 0, 0 = unusable (sky, dropped frame)
    """

    frame_ids: np.ndarray
    num_cameras: int
    T_chunk_cam: np.ndarray
    K: np.ndarray
    depth: np.ndarray
    conf: np.ndarray

    @staticmethod
    def from_prediction(pred: Prediction, frame_ids: np.ndarray, num_cameras: int) -> ChunkViews:
        conf = (np.ones_like(pred.depth) if pred.confidence is None
                else np.asarray(pred.confidence, np.float32))
        if pred.sky is not None:
            conf = np.where(pred.sky, 0.0, conf).astype(np.float32)
        return ChunkViews(np.asarray(frame_ids, np.int64), num_cameras,
                          invert_se3(pred.T_cam_world), np.asarray(pred.K, np.float64),
                          np.asarray(pred.depth, np.float32), conf)

    def view_rows(self, frame_ids: np.ndarray) -> np.ndarray:
        """(F', N) view indices of the given frames (all cameras), frame-major order."""
        pos = np.searchsorted(self.frame_ids, frame_ids)
        return pos[:, None] * self.num_cameras + np.arange(self.num_cameras)[None]

    def points(self, views: np.ndarray, pixels: np.ndarray | None = None) -> np.ndarray:
        """Back-project views to chunk-frame points.

        views: (V,) view indices; pixels: (P,) flat pixel indices (None = all H*W)
        returns (V, P, 3) float64 points, chunk frame
        """
        return backproject(self.depth[views], self.K[views], self.T_chunk_cam[views], pixels)


def pixel_rays(K: np.ndarray, hw: tuple[int, int], pixels: np.ndarray | None) -> np.ndarray:
    """(V, 3, 3) intrinsics -> (V, P, 3) rays K^-1 [u, v, 1] (z = 1).

    Pixel (u, v) = (column, row) is the pixel's centre, integer coordinates: the convention of
    the official code, of K in CameraInfo and of the depth node's clouds (geometry/points.py).
    """
    H, W = hw
    flat = np.arange(H * W) if pixels is None else pixels
    uv1 = np.stack([flat % W, flat // W, np.ones(len(flat))], axis=1).astype(np.float64)
    return np.einsum('vij,pj->vpi', np.linalg.inv(K), uv1)


def backproject(depth: np.ndarray, K: np.ndarray, T_frame_cam: np.ndarray,
                pixels: np.ndarray | None = None) -> np.ndarray:
    """Depth maps -> points in the frame of T_frame_cam.

    depth: (V, H, W) z-depth; K: (V, 3, 3) pixels; T_frame_cam: (V, 4, 4) camera -> frame
    pixels: (P,) flat indices or None for all
    returns (V, P, 3) float64
    """
    V, H, W = depth.shape
    z = depth.reshape(V, H * W) if pixels is None else depth.reshape(V, H * W)[:, pixels]
    return backproject_samples(z, K, T_frame_cam, (H, W), pixels)


def backproject_samples(z: np.ndarray, K: np.ndarray, T_frame_cam: np.ndarray,
                        hw: tuple[int, int], pixels: np.ndarray | None) -> np.ndarray:
    """Sampled z-depth (V, P) at flat `pixels` of (H, W) images -> (V, P, 3) float64 points."""
    p_cam = pixel_rays(K, hw, pixels) * np.asarray(z, np.float64)[..., None]
    return (np.einsum('vij,vpj->vpi', T_frame_cam[:, :3, :3], p_cam)
            + T_frame_cam[:, None, :3, 3])


def grid_pixels(hw: tuple[int, int], max_samples: int) -> np.ndarray:
    """About `max_samples` flat pixel indices on a regular grid covering an (H, W) image."""
    H, W = hw
    stride = max(1, int(np.sqrt(H * W / max_samples)))
    v, u = np.mgrid[stride // 2:H:stride, stride // 2:W:stride]
    return (v * W + u).ravel()
