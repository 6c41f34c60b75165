"""Loop verification beyond retrieval: quality relative to the sequence, plausibility
under the odometry chain's accumulated uncertainty, pairwise consistency, and a
post-optimisation residual gate.

The drift gate (docs/slam.md) is the one a cluster of wrong loops cannot fool: it compares a
loop with the odometry chain between its two chunks alone (never with other loops or with
estimates other loops have bent), so agreement among wrong loops does not help them.

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

import gtsam
import numpy as np

from da3_ros.errors import ConfigError
from da3_ros.geometry.sim3 import Sim3
from da3_ros.slam.overlap import Alignment
from da3_ros.slam.pose_graph import Edge, to_gtsam


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
    drift_gate: bool = True         # reject loops implausible under the odometry chain
    drift_chi2: float = 24.3        # Mahalanobis^2 limit, 7 dof: chi2(7) at 0.999
    candidate_chi2: float = 16.3     # retrieval pre-gate, 3 dof: chi2(3) at 0.999
    place_sigma_frac: float = 0.3    # pre-gate: two views of one place, x scene depth
    drift_sigma_factor: float = 2.0  # chain + loop sigmas x this: edge sigmas are tuned on
    #                                  nominal errors, not calibrated (docs/slam.md)

    def __post_init__(self):
        if self.pcm_max_gap < 1 or self.chi2_factor <= 1 or self.drift_chi2 <= 0 or \
                self.drift_sigma_factor <= 0:
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
    query_camera: int | None = None     # rig cameras of the two sides (None: all)
    match_camera: int | None = None


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


def chain_relative(edges: list[Edge]) -> tuple[Sim3, np.ndarray]:
    """Compose consecutive odometry edges (b, b+1), ..., (a-1, a) into T_b_a with its
    first-order covariance (7, 7), GTSAM Similarity3 tangent order (rot, trans, log-scale).

    Each edge is T_i_j = M Exp(xi), xi ~ N(0, C) (the BetweenFactor's error model); moving
    every Exp to the right of the product gives xi_total = sum_k Ad(S_k^-1) xi_k with
    S_k the product of the edges after k, so C_total = sum_k Ad C_k Ad^T.
    """
    T, C = Sim3.identity(), np.zeros((7, 7))
    for e in reversed(edges):              # tens of edges per loop, not points
        Ad = to_gtsam(T.inverse()).AdjointMap()
        C = C + Ad @ e.sigmas.covariance() @ Ad.T
        T = e.T_i_j @ T
    return T, C


def drift_mahalanobis2(T_b_a_loop: Sim3, C_loop: np.ndarray, T_b_a_chain: Sim3,
                       C_chain: np.ndarray, sigma_factor: float) -> float:
    """Squared Mahalanobis distance of the correction a loop implies, Log(loop^-1 chain),
    under the chain's and the loop's covariances (both (7, 7)) inflated by sigma_factor."""
    err = np.asarray(gtsam.Similarity3.Logmap(to_gtsam(T_b_a_loop).inverse()
                                              * to_gtsam(T_b_a_chain)))
    return float(err @ np.linalg.solve(sigma_factor ** 2 * (C_chain + C_loop), err))


def colocation_mahalanobis2(p_a: np.ndarray, p_b: np.ndarray, T_b_a_chain: Sim3,
                            C_chain: np.ndarray, place_sigma: float,
                            sigma_factor: float) -> float:
    """Can a query frame at p_a (chunk a) and a match at p_b (chunk b) be one place?

    Squared Mahalanobis distance of T_b_a p_a - p_b under the chain's covariance, mapped to
    the point by the first-order Jacobian s R [-[p]x, I, p] of T Exp(xi) p, plus an isotropic
    place_sigma (chunk b units) for how far apart two views of one place stand; both x
    sigma_factor. Used before a loop chunk is run, to skip look-alikes the drift rules out.
    """
    p = np.asarray(p_a, np.float64)
    skew = np.array([[0, -p[2], p[1]], [p[2], 0, -p[0]], [-p[1], p[0], 0]])
    J = T_b_a_chain.s * T_b_a_chain.R @ np.concatenate([-skew, np.eye(3), p[:, None]], 1)
    C = J @ C_chain @ J.T + place_sigma ** 2 * np.eye(3)
    d = T_b_a_chain.apply(p[None])[0] - np.asarray(p_b, np.float64)
    return float(d @ np.linalg.solve(sigma_factor ** 2 * C, d))
