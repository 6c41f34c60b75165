"""Loop verification beyond retrieval: quality relative to the sequence, pairwise
consistency, and a post-optimisation residual gate.

A network asked to explain two different places as one scene still returns a confident,
well aligned loop chunk, so alignment quality alone cannot reject a false
loop. What a false loop cannot fake is agreement with the other loops: two true loops
between the same two stretches of road close a cycle (loop, short odometry, loop, short
odometry) to identity. All thresholds are relative to the run's own statistics or to the
odometry lengths, never absolute metres (an absolute gate rejected every true loop of the
hard profile in the calibration run).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from da3_ros.errors import ConfigError
from da3_ros.geometry.sim3 import Sim3
from da3_ros.slam.overlap import Alignment


@dataclass(frozen=True)
class GateConfig:
    inlier_factor: float = 0.6      # loop inlier ratio >= factor * median sequential ratio
    residual_factor: float = 2.0    # loop median residual <= factor * median sequential one
    residual_floor: float = 1e-3    # ... where that median is at least this (noiseless input)
    pcm_max_gap: int = 3            # partner loops: both ends within this many chunks
    pcm_trans_frac: float = 0.05    # cycle translation error <= frac * odometry legs + floor
    pcm_trans_floor: float = 0.2    # ... floor as a fraction of the median scene depth
    pcm_rot_deg: float = 2.0        # cycle rotation error
    pcm_log_scale: float = 0.05     # cycle |log scale| error
    chi2_factor: float = 9.0        # after optimisation: reject chi2 > factor * median
    chi2_floor: float = 50.0        # ... but never below this

    def __post_init__(self):
        if self.pcm_max_gap < 1 or self.chi2_factor <= 1:
            raise ConfigError(f'invalid GateConfig {self}')


@dataclass(frozen=True)
class LoopMeasurement:
    """T_b_a from a loop chunk: maps chunk a (newer) into chunk b (older).

    query, match: the retrieved frames (a side, b side); quality: the two alignments
    """

    a: int
    b: int
    query: int
    match: int
    T_b_a: Sim3
    align_a: Alignment
    align_b: Alignment


def passes_quality(m: LoopMeasurement, seq_inlier: float, seq_residual: float,
                   cfg: GateConfig) -> bool:
    """Both loop-chunk alignments are about as good as the sequence's overlap alignments."""
    residual_limit = cfg.residual_factor * max(seq_residual, cfg.residual_floor)
    return all(al.inlier_ratio >= cfg.inlier_factor * seq_inlier
               and al.median_rel_residual <= residual_limit
               for al in (m.align_a, m.align_b))


def cycle_error(m1: LoopMeasurement, m2: LoopMeasurement,
                T_world_chunk: list[Sim3]) -> Sim3:
    """(T_b1_b2 T_b2_a2)^-1 T_b1_a1 T_a1_a2, identity when both loops and the odometry agree."""
    def rel(i, j):
        return T_world_chunk[i].inverse() @ T_world_chunk[j]
    return (rel(m1.b, m2.b) @ m2.T_b_a).inverse() @ (m1.T_b_a @ rel(m1.a, m2.a))


def consistent(m1: LoopMeasurement, m2: LoopMeasurement, T_world_chunk: list[Sim3],
               scene_depth: float, cfg: GateConfig) -> bool:
    """Pairwise consistency of two loops whose ends are near in time (pcm_max_gap)."""
    if m1.a == m2.a or abs(m1.a - m2.a) > cfg.pcm_max_gap or abs(m1.b - m2.b) > cfg.pcm_max_gap:
        return False
    legs = sum(np.linalg.norm(T_world_chunk[i].t - T_world_chunk[j].t) / T_world_chunk[i].s
               for i, j in ((m1.a, m2.a), (m1.b, m2.b)))
    E = cycle_error(m1, m2, T_world_chunk)
    return bool(np.linalg.norm(E.t) <= cfg.pcm_trans_frac * legs + cfg.pcm_trans_floor
                * scene_depth and np.rad2deg(E.rotation_angle_rad()) <= cfg.pcm_rot_deg
                and abs(np.log(E.s)) <= cfg.pcm_log_scale)


def chi2_outliers(chi2: dict[int, float], cfg: GateConfig) -> list[int]:
    """Loop ids whose whitened residual is far above the run's median loop residual."""
    if not chi2:
        return []
    limit = max(cfg.chi2_floor, cfg.chi2_factor * float(np.median(list(chi2.values()))))
    return [k for k, v in chi2.items() if v > limit]
