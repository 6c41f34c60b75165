"""Loop candidates: global-descriptor retrieval with temporal exclusion and NMS.

Descriptors are unit vectors (pooled backbone tokens), so the inner product is the cosine
similarity. Every new frame queries the frames older than `exclude_frames`; the hits above
the threshold (top-k per query) are thinned by greedy non-maximum suppression in frame
space, so one revisit yields a few well separated pairs, not hundreds.

Surround rigs (`per_camera`): one descriptor per camera with its camera index, and every
camera of a query frame against every camera of the database, so a place seen now by the
front camera is found where the rear camera saw it then (a revisit driven the other way).
Cost: N x N times the single-descriptor product, bounded like it by `keyframe_every` and
by the places-not-frames database (`revisits`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from da3_ros.errors import ConfigError


@dataclass(frozen=True)
class LoopConfig:
    similarity: float = 0.85      # cosine similarity threshold for a candidate
    top_k: int = 5                # hits kept per query frame
    exclude_frames: int = 240     # never match frames closer in time than this
    nms_frames: int = 25          # suppression radius (frames) around a kept pair
    window: int = 20              # frames per side of a loop chunk (2 * window views)
    max_per_chunk: int = 2        # loop chunks run per new chunk (network cost bound)
    skip_revisits: bool = True    # frames of places already in the database are not added
    keyframe_every: int = 1       # only frames with index % k == 0 enter the database
    per_camera: bool = True       # rigs: a descriptor per camera, all cameras vs all cameras

    def __post_init__(self):
        if not -1.0 <= self.similarity <= 1.0 or self.top_k < 1 or self.window < 2 or \
                self.keyframe_every < 1:
            raise ConfigError(f'invalid LoopConfig {self}')


@dataclass(frozen=True)
class LoopCandidate:
    """query: the newer frame, match: the older frame, similarity: cosine; query_camera,
    match_camera: the rig cameras whose descriptors matched (None: the frame's mean
    descriptor, every camera)."""

    query: int
    match: int
    similarity: float
    query_camera: int | None = None
    match_camera: int | None = None


class LoopDatabase:
    """Descriptors of past frames (float16, D per frame and camera) and brute-force retrieval.

    Entries are (frame, camera) rows: C = 1 row per frame for frame-level descriptors
    (camera -1), C = N rows for a per-camera rig. A frame whose place is already in the
    database (every camera matched by an older entry, outside the temporal exclusion, above
    the candidate threshold) need not be added again: with `revisits` the caller keeps the
    database growing with the places seen, not with the frames.
    """

    def __init__(self, cfg: LoopConfig):
        self.cfg = cfg
        self.entry_frames = np.zeros(0, np.int64)     # (M,) frame of each row, increasing
        self.entry_cameras = np.zeros(0, np.int16)    # (M,) rig camera of each row, -1: all
        self.descriptors: np.ndarray | None = None    # (M, D) float16

    @property
    def frame_ids(self) -> np.ndarray:
        """(K,) the frames in the database, increasing."""
        return np.unique(self.entry_frames)

    @property
    def nbytes(self) -> int:
        return self.entry_frames.nbytes + self.entry_cameras.nbytes + (
            0 if self.descriptors is None else self.descriptors.nbytes)

    @staticmethod
    def _per_frame(descriptors: np.ndarray) -> np.ndarray:
        """(F, D) or (F, C, D) -> (F, C, D)."""
        d = np.asarray(descriptors)
        return d[:, None] if d.ndim == 2 else d

    def add(self, frame_ids: np.ndarray, descriptors: np.ndarray):
        """frame_ids: (F,) increasing; descriptors: (F, D) or (F, C, D) unit norm (C cameras)."""
        d = self._per_frame(descriptors)
        F, C, D = d.shape
        cams = np.arange(C, dtype=np.int16) if C > 1 else np.full(1, -1, np.int16)
        d16 = d.reshape(F * C, D).astype(np.float16)
        self.descriptors = d16 if self.descriptors is None else np.concatenate(
            [self.descriptors, d16])
        self.entry_frames = np.concatenate([self.entry_frames, np.repeat(frame_ids, C)])
        self.entry_cameras = np.concatenate([self.entry_cameras, np.tile(cams, F)])

    def contains(self, frame_ids: np.ndarray) -> np.ndarray:
        """(F,) bool: which frames are in the database."""
        if len(self.entry_frames) == 0:
            return np.zeros(len(frame_ids), bool)
        at = np.searchsorted(self.entry_frames, frame_ids)
        return (at < len(self.entry_frames)) & (
            self.entry_frames[np.minimum(at, len(self.entry_frames) - 1)] == frame_ids)

    def _similarity(self, frame_ids: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """(F, C, M) cosine similarity of each query camera to the stored rows, -inf where
        too recent."""
        d = self._per_frame(descriptors).astype(np.float32)
        sim = d @ self.descriptors.astype(np.float32).T
        too_recent = self.entry_frames[None, :] > frame_ids[:, None] - self.cfg.exclude_frames
        sim[np.broadcast_to(too_recent[:, None], sim.shape)] = -np.inf
        return sim

    def revisits(self, frame_ids: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """(F,) bool: frames whose place older entries already cover (every camera above
        the candidate threshold)."""
        if self.descriptors is None or len(frame_ids) == 0:
            return np.zeros(len(frame_ids), bool)
        return (self._similarity(frame_ids, descriptors).max(2) >= self.cfg.similarity).all(1)

    def query(self, frame_ids: np.ndarray, descriptors: np.ndarray) -> list[LoopCandidate]:
        """Candidates for query frames (F,) with descriptors (F, D) or (F, C, D), after NMS,
        best first; a per-camera hit names both cameras."""
        if self.descriptors is None or len(frame_ids) == 0:
            return []
        sim = self._similarity(frame_ids, descriptors)                      # (F, C, M)
        F, C, M = sim.shape
        sim = sim.reshape(F * C, M)
        k = min(self.cfg.top_k, M)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]                # (F C, k)
        top_sim = np.take_along_axis(sim, top, axis=1)
        q, j = np.nonzero(top_sim >= self.cfg.similarity)
        row = top[q, j]
        query_cam = np.where(C > 1, q % C, -1)
        pairs = np.stack([frame_ids[q // C], self.entry_frames[row], query_cam,
                          self.entry_cameras[row]], axis=1)
        return nms(pairs, top_sim[q, j], self.cfg.nms_frames)


def nms(pairs: np.ndarray, similarity: np.ndarray, radius: int) -> list[LoopCandidate]:
    """Greedy suppression: keep the best pair, drop pairs within `radius` frames of it on
    both sides, repeat. pairs: (M, 2) (query, match) or (M, 4) with (query camera, match
    camera), -1 = every camera; similarity: (M,)."""
    order = np.argsort(-similarity)
    pairs, similarity = pairs[order], similarity[order]
    alive = np.ones(len(pairs), bool)
    kept = []
    for i in range(len(pairs)):             # loop over candidates (tens), not over points
        if not alive[i]:
            continue
        cams = [None if len(pairs[i]) < 4 or pairs[i, c] < 0 else int(pairs[i, c])
                for c in (2, 3)]
        kept.append(LoopCandidate(int(pairs[i, 0]), int(pairs[i, 1]), float(similarity[i]),
                                  *cams))
        near = (np.abs(pairs[:, 0] - pairs[i, 0]) <= radius) & (
            np.abs(pairs[:, 1] - pairs[i, 1]) <= radius)
        alive &= ~near
    return kept
