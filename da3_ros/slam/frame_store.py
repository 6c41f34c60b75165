"""Per-frame state kept for the whole run: owner chunk, local camera poses, sparse depth.

This is the only per-frame memory of the SLAM (the dense depth of a chunk lives only until
the next chunk is aligned): per frame and camera one 4x4 pose, intrinsics and P sparse
depth/confidence samples (float16) used to verify loops later, about 1 KB per frame at
P = 128. Frame poses are never stored in world coordinates: they are re-anchored from the
owner chunk's Sim(3) whenever asked, so a pose-graph update costs nothing here.
"""
from __future__ import annotations

import numpy as np

from da3_ros.geometry.sim3 import Sim3
from da3_ros.slam.views import ChunkViews


class FrameStore:
    """Growable arrays indexed by frame index (frames must arrive in order, no gaps)."""

    def __init__(self, num_cameras: int, pixels: np.ndarray):
        """pixels: (P,) flat pixel indices sampled for every view (fixed for the run)."""
        self.num_cameras, self.pixels = num_cameras, np.asarray(pixels, np.int64)
        self.size = 0
        N, P = num_cameras, len(self.pixels)
        self.owner = np.zeros(0, np.int32)
        self.stamp_s = np.zeros(0, np.float64)
        self.T_chunk_cam = np.zeros((0, N, 4, 4), np.float64)
        self.K = np.zeros((0, N, 3, 3), np.float32)
        self.depth = np.zeros((0, N, P), np.float16)
        self.conf = np.zeros((0, N, P), np.float16)

    def _reserve(self, n: int):
        if n <= len(self.owner):
            return
        cap = max(n, 2 * len(self.owner), 256)
        for name in ('owner', 'stamp_s', 'T_chunk_cam', 'K', 'depth', 'conf'):
            old = getattr(self, name)
            new = np.zeros((cap,) + old.shape[1:], old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)

    def assign(self, chunk_index: int, views: ChunkViews, frame_ids: np.ndarray,
               stamps_s: np.ndarray):
        """Make `chunk_index` the owner of `frame_ids` (a contiguous run within the chunk)."""
        if len(frame_ids) == 0:
            return
        self._reserve(int(frame_ids[-1]) + 1)
        rows = views.view_rows(frame_ids)                         # (F', N)
        self.owner[frame_ids] = chunk_index
        self.stamp_s[frame_ids] = stamps_s
        self.T_chunk_cam[frame_ids] = views.T_chunk_cam[rows]
        self.K[frame_ids] = views.K[rows]
        S, H, W = views.depth.shape
        self.depth[frame_ids] = views.depth.reshape(S, H * W)[rows][..., self.pixels]
        self.conf[frame_ids] = views.conf.reshape(S, H * W)[rows][..., self.pixels]
        self.size = max(self.size, int(frame_ids[-1]) + 1)

    def world_poses(self, T_world_chunk: list[Sim3], camera: int = 0) -> np.ndarray:
        """(F, 4, 4) float64 camera -> world poses of all frames, world units (re-anchored)."""
        owner = self.owner[:self.size]
        s = np.array([T.s for T in T_world_chunk])[owner]
        R = np.stack([T.R for T in T_world_chunk])[owner]
        t = np.stack([T.t for T in T_world_chunk])[owner]
        local = self.T_chunk_cam[:self.size, camera]
        out = np.zeros((self.size, 4, 4))
        out[:, :3, :3] = R @ local[:, :3, :3]
        out[:, :3, 3] = s[:, None] * np.einsum('fij,fj->fi', R, local[:, :3, 3]) + t
        out[:, 3, 3] = 1.0
        return out

    def owned_range(self, chunk_index: int, around: int, width: int) -> np.ndarray:
        """Up to `width` consecutive frames owned by `chunk_index`, centred on frame `around`."""
        owned = np.flatnonzero(self.owner[:self.size] == chunk_index)
        if len(owned) == 0:
            return owned
        first = int(np.clip(around - width // 2, owned[0], max(owned[0], owned[-1] + 1 - width)))
        return np.arange(first, min(first + width, owned[-1] + 1))
