"""Loop candidates: global-descriptor retrieval with temporal exclusion and NMS.

Descriptors are unit vectors (pooled backbone tokens), so the inner product is the cosine
similarity. Every new frame queries the frames older than `exclude_frames`; the hits above
the threshold (top-k per query) are thinned by greedy non-maximum suppression in frame
space, so one revisit yields a few well separated pairs, not hundreds.
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

    def __post_init__(self):
        if not -1.0 <= self.similarity <= 1.0 or self.top_k < 1 or self.window < 2 or \
                self.keyframe_every < 1:
            raise ConfigError(f'invalid LoopConfig {self}')


@dataclass(frozen=True)
class LoopCandidate:
    """query: the newer frame, match: the older frame, similarity: cosine."""

    query: int
    match: int
    similarity: float


class LoopDatabase:
    """Descriptors of past frames (float16, D per frame) and brute-force retrieval.

    A frame whose place is already in the database (an older entry, outside the temporal
    exclusion, above the candidate threshold) need not be added again: with `revisits`
    the caller keeps the database growing with the places seen, not with the frames.
    """

    def __init__(self, cfg: LoopConfig):
        self.cfg = cfg
        self.frame_ids = np.zeros(0, np.int64)
        self.descriptors: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return self.frame_ids.nbytes + (0 if self.descriptors is None else self.descriptors.nbytes)

    def add(self, frame_ids: np.ndarray, descriptors: np.ndarray):
        """frame_ids: (F,) increasing; descriptors: (F, D) unit norm."""
        d16 = np.asarray(descriptors, np.float16)
        self.descriptors = d16 if self.descriptors is None else np.concatenate(
            [self.descriptors, d16])
        self.frame_ids = np.concatenate([self.frame_ids, frame_ids])

    def contains(self, frame_ids: np.ndarray) -> np.ndarray:
        """(F,) bool: which frames are in the database."""
        if len(self.frame_ids) == 0:
            return np.zeros(len(frame_ids), bool)
        at = np.searchsorted(self.frame_ids, frame_ids)
        return (at < len(self.frame_ids)) & (
            self.frame_ids[np.minimum(at, len(self.frame_ids) - 1)] == frame_ids)

    def _similarity(self, frame_ids: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """(F, M) cosine similarity to the stored frames, -inf where too recent."""
        sim = descriptors.astype(np.float32) @ self.descriptors.astype(np.float32).T
        too_recent = self.frame_ids[None, :] > frame_ids[:, None] - self.cfg.exclude_frames
        sim[too_recent] = -np.inf
        return sim

    def revisits(self, frame_ids: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """(F,) bool: frames whose place an older entry already covers (similarity above
        the candidate threshold)."""
        if self.descriptors is None or len(frame_ids) == 0:
            return np.zeros(len(frame_ids), bool)
        return self._similarity(frame_ids, descriptors).max(1) >= self.cfg.similarity

    def query(self, frame_ids: np.ndarray, descriptors: np.ndarray) -> list[LoopCandidate]:
        """Candidates for query frames (F,) with descriptors (F, D), after NMS, best first."""
        if self.descriptors is None or len(frame_ids) == 0:
            return []
        sim = self._similarity(frame_ids, descriptors)                      # (F, M)
        k = min(self.cfg.top_k, sim.shape[1])
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]                # (F, k)
        top_sim = np.take_along_axis(sim, top, axis=1)
        q, j = np.nonzero(top_sim >= self.cfg.similarity)
        pairs = np.stack([frame_ids[q], self.frame_ids[top[q, j]], ], axis=1)
        return nms(pairs, top_sim[q, j], self.cfg.nms_frames)


def nms(pairs: np.ndarray, similarity: np.ndarray, radius: int) -> list[LoopCandidate]:
    """Greedy suppression: keep the best pair, drop pairs within `radius` frames of it on
    both sides, repeat. pairs: (M, 2) (query, match); similarity: (M,)."""
    order = np.argsort(-similarity)
    pairs, similarity = pairs[order], similarity[order]
    alive = np.ones(len(pairs), bool)
    kept = []
    for i in range(len(pairs)):             # loop over candidates (tens), not over points
        if not alive[i]:
            continue
        kept.append(LoopCandidate(int(pairs[i, 0]), int(pairs[i, 1]), float(similarity[i])))
        near = (np.abs(pairs[:, 0] - pairs[i, 0]) <= radius) & (
            np.abs(pairs[:, 1] - pairs[i, 1]) <= radius)
        alive &= ~near
    return kept
