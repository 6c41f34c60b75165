"""Per-frame state kept for the run: owner chunk, local camera poses, and sparse depth of
the frames that loop closure may need again.

Per frame and camera one 4x4 pose in its owner chunk and the intrinsics (the trajectory:
about 170 B per frame and camera). Frame poses are never stored in world coordinates: they
are re-anchored from the owner chunk's Sim(3) whenever asked, so a pose-graph update costs
nothing here.

Loop verification compares a loop chunk's depth with the depth the frames had in their
own chunk, at P fixed pixels (float16 depth and confidence, 4 P bytes per view). Those
samples are only kept for frames in the loop database; the SLAM releases the others once
their chunk's loop search is done. With revisited places left out of the database the
samples grow with the places seen, not with the frames.
"""
from __future__ import annotations

import numpy as np

from da3_ros.geometry.sim3 import Sim3
from da3_ros.slam.views import ChunkViews


class FrameStore:
    """Growable arrays indexed by frame index (frames must arrive in order, no gaps); the
    depth samples live in a pool of rows, `row[frame]` (-1: none), reused once released."""

    _FRAME_ARRAYS = ('owner', 'stamp_s', 'T_chunk_cam', 'K', 'row')
    _SAMPLE_ARRAYS = ('depth', 'conf')

    def __init__(self, num_cameras: int, pixels: np.ndarray):
        """pixels: (P,) flat pixel indices sampled for every view (fixed for the run)."""
        self.num_cameras, self.pixels = num_cameras, np.asarray(pixels, np.int64)
        self.size = 0
        N, P = num_cameras, len(self.pixels)
        self.owner = np.zeros(0, np.int32)
        self.stamp_s = np.zeros(0, np.float64)
        self.T_chunk_cam = np.zeros((0, N, 4, 4), np.float64)
        self.K = np.zeros((0, N, 3, 3), np.float32)
        self.row = np.zeros(0, np.int32)
        self.depth = np.zeros((0, N, P), np.float16)     # (rows, N, P)
        self.conf = np.zeros((0, N, P), np.float16)
        self.free_rows: list[int] = []

    @property
    def nbytes(self) -> int:
        """Bytes in use: every frame's record plus the sample rows held (not free)."""
        frame = sum(getattr(self, name)[:1].nbytes for name in self._FRAME_ARRAYS)
        sample = sum(getattr(self, name)[:1].nbytes for name in self._SAMPLE_ARRAYS)
        return frame * self.size + sample * self.sample_count

    @property
    def sample_count(self) -> int:
        return len(self.depth) - len(self.free_rows)

    def has_samples(self, frame_ids: np.ndarray) -> np.ndarray:
        return self.row[frame_ids] >= 0

    def samples(self, frame_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Depth and confidence (len(frame_ids), N, P) float16 of frames that have samples."""
        rows = self.row[frame_ids]
        if (rows < 0).any():
            raise KeyError(f'frames without samples: {frame_ids[rows < 0]}')
        return self.depth[rows], self.conf[rows]

    @staticmethod
    def _grown(old: np.ndarray, n: int) -> np.ndarray:
        if n <= len(old):
            return old
        new = np.zeros((max(n, 2 * len(old), 256),) + old.shape[1:], old.dtype)
        new[:len(old)] = old
        return new

    def _reserve_frames(self, n: int):
        old_len = len(self.row)
        for name in self._FRAME_ARRAYS:
            setattr(self, name, self._grown(getattr(self, name), n))
        self.row[old_len:] = -1

    def _take_rows(self, count: int) -> np.ndarray:
        """`count` sample rows from the free list, growing the pool by half when short."""
        if len(self.free_rows) < count:
            used = len(self.depth)
            grow = max(count - len(self.free_rows), used // 2, 256)
            for name in self._SAMPLE_ARRAYS:
                setattr(self, name, self._grown(getattr(self, name), used + grow))
            grow = len(self.depth) - used
            self.free_rows.extend(range(used + grow - 1, used - 1, -1))   # pop(): lowest first
        return np.array([self.free_rows.pop() for _ in range(count)], np.int64)

    def assign(self, chunk_index: int, views: ChunkViews, frame_ids: np.ndarray,
               stamps_s: np.ndarray):
        """Make `chunk_index` the owner of `frame_ids` (a contiguous run within the chunk);
        their depth samples are (re)written from this chunk."""
        if len(frame_ids) == 0:
            return
        self._reserve_frames(int(frame_ids[-1]) + 1)
        rows = views.view_rows(frame_ids)                         # (F', N)
        self.owner[frame_ids] = chunk_index
        self.stamp_s[frame_ids] = stamps_s
        self.T_chunk_cam[frame_ids] = views.T_chunk_cam[rows]
        self.K[frame_ids] = views.K[rows]
        missing = frame_ids[self.row[frame_ids] < 0]
        if len(missing):
            self.row[missing] = self._take_rows(len(missing))
        S, H, W = views.depth.shape
        target = self.row[frame_ids]
        self.depth[target] = views.depth.reshape(S, H * W)[rows][..., self.pixels]
        self.conf[target] = views.conf.reshape(S, H * W)[rows][..., self.pixels]
        self.size = max(self.size, int(frame_ids[-1]) + 1)

    def release_samples(self, frame_ids: np.ndarray):
        """Forget the depth samples of these frames (their poses stay)."""
        rows = self.row[frame_ids]
        self.free_rows.extend(int(r) for r in rows[rows >= 0])
        self.row[frame_ids] = -1

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
