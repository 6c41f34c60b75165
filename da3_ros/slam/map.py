"""Bounded global map: a voxel grid whose points live in their anchor chunk's frame.

Each voxel keeps one confidence-weighted mean point, stored in the local frame of an
anchor chunk, plus its weight. World coordinates are T_world_anchor applied on the fly, so
a pose-graph update re-anchors the whole map without touching stored points. Points that
fall in an occupied voxel are merged into it, so memory grows with the mapped surface
area, not with the number of frames; after an optimisation `reanchor` re-hashes the
voxels, merging the duplicates that a loop closure brings together.
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

    def __post_init__(self):
        if self.voxel_m <= 0 or self.points_per_frame < 1:
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
    float32 summed confidence, anchor (M,) int32 chunk index."""

    def __init__(self, cfg: MapConfig):
        self.cfg = cfg
        self.local = np.zeros((0, 3), np.float32)
        self.weight = np.zeros(0, np.float32)
        self.anchor = np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.weight)

    @property
    def nbytes(self) -> int:
        return self.local.nbytes + self.weight.nbytes + self.anchor.nbytes

    def points_world(self, T_world_chunk: list[Sim3]) -> np.ndarray:
        """(M, 3) float64 world points under the given chunk poses."""
        return self._to_world(self.local, self.anchor, T_world_chunk)

    def insert(self, points: np.ndarray, conf: np.ndarray, chunk: int,
               T_world_chunk: list[Sim3]):
        """Merge new chunk-frame points (N, 3) with weights conf (N,) > 0 (chunk `chunk`)."""
        keep = np.isfinite(points).all(1) & (conf > 0)
        self._merge(np.concatenate([self.local, points[keep].astype(np.float32)]),
                    np.concatenate([self.weight, conf[keep].astype(np.float32)]),
                    np.concatenate([self.anchor, np.full(keep.sum(), chunk, np.int32)]),
                    T_world_chunk)

    def reanchor(self, T_world_chunk: list[Sim3]):
        """Re-hash after the chunk poses changed; merges voxels that now coincide."""
        self._merge(self.local, self.weight, self.anchor, T_world_chunk)

    @staticmethod
    def _to_world(local, anchor, T_world_chunk):
        return _apply_per_anchor(local, anchor, T_world_chunk, inverse=False)

    def _merge(self, local, weight, anchor, T_world_chunk):
        world = self._to_world(local, anchor, T_world_chunk)
        cell = np.floor(world / self.cfg.voxel_m).astype(np.int64) + (1 << 20)
        # One int64 per voxel (21 bits per axis: +-1e6 voxels) so np.unique sorts scalars.
        keys = (cell[:, 0] << 42) | (cell[:, 1] << 21) | cell[:, 2]
        _, group = np.unique(keys, return_inverse=True)
        n = group.max() + 1 if len(group) else 0
        w_sum = np.bincount(group, weight, n)
        mean = np.stack([np.bincount(group, weight * world[:, d], n) for d in range(3)], 1)
        mean /= w_sum[:, None]
        # The heaviest member's chunk anchors the voxel (ties: the first one seen).
        order = np.lexsort((-weight, group))
        first = order[np.r_[True, group[order][1:] != group[order][:-1]]]
        new_anchor = anchor[first]
        self.local = _apply_per_anchor(mean, new_anchor, T_world_chunk,
                                       inverse=True).astype(np.float32)
        self.weight = w_sum.astype(np.float32)
        self.anchor = new_anchor.astype(np.int32)
