"""Bounded global map: a voxel grid whose points live in their anchor chunk's frame.

Each voxel keeps one confidence-weighted mean point, stored in the local frame of an
anchor chunk, plus its weight. World coordinates are T_world_anchor applied on the fly, so
a pose-graph update re-anchors the whole map without touching stored points. Points that
fall in an occupied voxel are merged into it; after an optimisation `reanchor` re-hashes
the voxels, merging the duplicates that a loop closure brings together.

Merging alone still lets the map grow with the number of frames: every frame's outliers
and noise stragglers land in fresh voxels. So each voxel also counts its hits (points
merged into it) and remembers the last chunk that hit it; a voxel with fewer than
`min_hits` hits that no chunk has touched for `prune_after` chunks is dropped (a surface
seen by the camera is hit by many frames; a stray point is hit once). What stays is the
surface seen repeatedly, so memory follows the mapped area.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from da3_ros.errors import ConfigError
from da3_ros.geometry.sim3 import Sim3


@dataclass(frozen=True)
class MapConfig:
    voxel_m: float = 0.5           # voxel edge, world units
    conf_floor: float = 0.5        # keep points with conf > conf_floor * median conf
    max_depth_ratio: float = 4.0   # drop points deeper than this x median depth (far noise)
    points_per_frame: int = 256    # sub-sampling per view before voxelisation
    min_hits: int = 2              # voxels hit fewer times are dropped once stale (1: keep all)
    prune_after: int = 2           # chunks without a hit before a voxel is stale

    def __post_init__(self):
        if self.voxel_m <= 0 or self.points_per_frame < 1 or self.min_hits < 1 or \
                self.prune_after < 1:
            raise ConfigError(f'invalid MapConfig {self}')


def _apply_per_anchor(points: np.ndarray, anchor: np.ndarray, T_world_chunk: list[Sim3],
                      inverse: bool) -> np.ndarray:
    """(M, 3) points with (M,) anchor chunk ids -> world (or back to local if inverse).

    Loops over the anchors present (chunks, tens to hundreds), never over points.
    """
    out = np.empty((len(points), 3), np.float64)
    order = np.argsort(anchor, kind='stable')
    ids, starts = np.unique(anchor[order], return_index=True)
    for k, lo, hi in zip(ids, starts, np.r_[starts[1:], len(order)], strict=True):
        T = T_world_chunk[k].inverse() if inverse else T_world_chunk[k]
        rows = order[lo:hi]
        out[rows] = T.apply(points[rows])
    return out


class VoxelMap:
    """Voxel-merged cloud. Arrays: local (M, 3) float32 anchor-frame points, weight (M,)
    float32 summed confidence, anchor (M,) int32 chunk index, hits (M,) int32 points merged,
    last (M,) int32 latest chunk that hit the voxel."""

    _ARRAYS = ('local', 'weight', 'anchor', 'hits', 'last')

    def __init__(self, cfg: MapConfig):
        self.cfg = cfg
        self.local = np.zeros((0, 3), np.float32)
        self.weight = np.zeros(0, np.float32)
        self.anchor = np.zeros(0, np.int32)
        self.hits = np.zeros(0, np.int32)
        self.last = np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.weight)

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self._ARRAYS)

    def points_world(self, T_world_chunk: list[Sim3]) -> np.ndarray:
        """(M, 3) float64 world points under the given chunk poses."""
        return self._to_world(self.local, self.anchor, T_world_chunk)

    def insert(self, points: np.ndarray, conf: np.ndarray, chunk: int,
               T_world_chunk: list[Sim3]):
        """Merge new chunk-frame points (N, 3) with weights conf (N,) > 0 (chunk `chunk`)."""
        keep = np.isfinite(points).all(1) & (conf > 0)
        n = int(keep.sum())
        self._merge(np.concatenate([self.local, points[keep].astype(np.float32)]),
                    np.concatenate([self.weight, conf[keep].astype(np.float32)]),
                    np.concatenate([self.anchor, np.full(n, chunk, np.int32)]),
                    np.concatenate([self.hits, np.ones(n, np.int32)]),
                    np.concatenate([self.last, np.full(n, chunk, np.int32)]),
                    T_world_chunk)
        self._prune(chunk)

    def reanchor(self, T_world_chunk: list[Sim3]):
        """Re-hash after the chunk poses changed; merges voxels that now coincide."""
        self._merge(self.local, self.weight, self.anchor, self.hits, self.last, T_world_chunk)

    def _prune(self, chunk: int):
        """Drop voxels with fewer than min_hits hits and no hit for prune_after chunks."""
        keep = (self.hits >= self.cfg.min_hits) | (self.last > chunk - self.cfg.prune_after)
        if not keep.all():
            for name in self._ARRAYS:
                setattr(self, name, getattr(self, name)[keep])

    @staticmethod
    def _to_world(local, anchor, T_world_chunk):
        return _apply_per_anchor(local, anchor, T_world_chunk, inverse=False)

    def _merge(self, local, weight, anchor, hits, last, T_world_chunk):
        if len(local) == 0:
            return
        world = self._to_world(local, anchor, T_world_chunk)
        cell = np.floor(world / self.cfg.voxel_m).astype(np.int64) + (1 << 20)
        # One int64 per voxel (21 bits per axis: +-1e6 voxels) so np.unique sorts scalars.
        keys = (cell[:, 0] << 42) | (cell[:, 1] << 21) | cell[:, 2]
        _, group = np.unique(keys, return_inverse=True)
        n = group.max() + 1
        w_sum = np.bincount(group, weight, n)
        mean = np.stack([np.bincount(group, weight * world[:, d], n) for d in range(3)], 1)
        mean /= w_sum[:, None]
        # The heaviest member's chunk anchors the voxel (ties: the first one seen).
        order = np.lexsort((-weight, group))
        starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
        new_anchor = anchor[order[starts]]
        self.local = _apply_per_anchor(mean, new_anchor, T_world_chunk,
                                       inverse=True).astype(np.float32)
        self.weight = w_sum.astype(np.float32)
        self.anchor = new_anchor.astype(np.int32)
        self.hits = np.bincount(group, hits, n).astype(np.int32)
        self.last = np.maximum.reduceat(last[order], starts).astype(np.int32)
