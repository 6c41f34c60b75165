"""Sim(3) pose graph over chunk nodes, optimised with GTSAM Levenberg-Marquardt.

Node k is T_world_chunk_k. An edge (i, j) measures T_i_j = T_world_i^-1 T_world_j, with
a diagonal information in GTSAM's Similarity3 tangent order (rotation rad x3,
translation x3, log-scale), plus an optional extra translation variance along the
motion. Odometry edges are Gaussian; loop edges get a Cauchy kernel, so one wrong loop
that slipped through verification bends the graph little. An optional unary prior
log(s_k) ~ N(0, sigma) per node uses a metric network (or a rig's known baseline) to stop
the scale random walk.
"""
from __future__ import annotations

from dataclasses import dataclass

import gtsam
import numpy as np

from da3_ros.errors import ConfigError
from da3_ros.geometry.sim3 import Sim3

FREE_SIGMA = 1e4       # sigma of the components a scale-only prior leaves free
GNC_FACTOR = 4.0       # kernel width shrink per stage of the graduated solve


@dataclass(frozen=True)
class EdgeSigmas:
    """Edge noise. trans_along adds variance along the unit `direction` (the edge's travel
    direction in the tangent's translation frame): overlap alignments err mostly along the
    motion, where a scale error of the shared frames shows up."""

    rot_rad: float        # per axis
    trans: float          # per axis, units of the edge's first node
    log_scale: float
    trans_along: float = 0.0
    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def vector(self) -> np.ndarray:
        """Per-axis sigmas without the along-motion term."""
        return np.array([self.rot_rad] * 3 + [self.trans] * 3 + [self.log_scale])

    def covariance(self) -> np.ndarray:
        """(7, 7) in GTSAM's Similarity3 tangent order."""
        C = np.diag(self.vector() ** 2)
        u = np.asarray(self.direction, np.float64)
        C[3:6, 3:6] += self.trans_along ** 2 * np.outer(u, u)
        return C

    def noise_model(self):
        if self.trans_along == 0.0:
            return gtsam.noiseModel.Diagonal.Sigmas(self.vector())
        return gtsam.noiseModel.Gaussian.Covariance(self.covariance())


@dataclass(frozen=True)
class GraphConfig:
    cauchy_k: float = 3.0                    # Cauchy scale of loop edges, whitened units
    metric_prior_sigma: float | None = None  # sigma of log s_k per node; None = no prior
    max_iterations: int = 100

    def __post_init__(self):
        if self.cauchy_k <= 0 or (self.metric_prior_sigma is not None
                                  and self.metric_prior_sigma <= 0):
            raise ConfigError(f'invalid GraphConfig {self}')


def to_gtsam(T: Sim3) -> gtsam.Similarity3:
    """Our x' = s R x + t  ->  GTSAM's x' = s (R x + t_g), so t_g = t / s."""
    return gtsam.Similarity3(gtsam.Rot3(T.R), T.t / T.s, T.s)


def from_gtsam(S: gtsam.Similarity3) -> Sim3:
    s = float(S.scale())
    return Sim3(s, S.rotation().matrix(), np.asarray(S.translation()) * s)


@dataclass(frozen=True)
class Edge:
    i: int
    j: int
    T_i_j: Sim3
    sigmas: EdgeSigmas


class PoseGraph:
    """Chunk nodes + odometry/loop edges; rebuilt and re-solved on demand (tens of nodes per
    km, so a full LM solve takes milliseconds and edges can be removed freely)."""

    def __init__(self, cfg: GraphConfig):
        self.cfg = cfg
        self.estimates: list[Sim3] = []
        self.odometry: list[Edge] = []
        self.loops: dict[int, Edge] = {}
        self._next_loop = 0

    def add_node(self, T_world_chunk: Sim3) -> int:
        self.estimates.append(T_world_chunk)
        return len(self.estimates) - 1

    def add_odometry(self, edge: Edge):
        self.odometry.append(edge)

    def add_loop(self, edge: Edge) -> int:
        self.loops[self._next_loop] = edge
        self._next_loop += 1
        return self._next_loop - 1

    def remove_loop(self, loop_id: int):
        del self.loops[loop_id]

    def _factors(self, cauchy_k: float) -> gtsam.NonlinearFactorGraph:
        graph = gtsam.NonlinearFactorGraph()
        anchor = np.array([1e-6] * 6 + [self.cfg.metric_prior_sigma or 1e-6])
        graph.add(gtsam.PriorFactorSimilarity3(0, to_gtsam(self.estimates[0]),
                                               gtsam.noiseModel.Diagonal.Sigmas(anchor)))
        if self.cfg.metric_prior_sigma is not None:
            scale_only = gtsam.noiseModel.Diagonal.Sigmas(
                np.array([FREE_SIGMA] * 6 + [self.cfg.metric_prior_sigma]))
            for k in range(1, len(self.estimates)):
                graph.add(gtsam.PriorFactorSimilarity3(k, gtsam.Similarity3(), scale_only))
        for e in self.odometry:
            graph.add(gtsam.BetweenFactorSimilarity3(
                e.i, e.j, to_gtsam(e.T_i_j), e.sigmas.noise_model()))
        cauchy = gtsam.noiseModel.mEstimator.Cauchy.Create(cauchy_k)
        for e in self.loops.values():
            noise = gtsam.noiseModel.Robust.Create(cauchy, e.sigmas.noise_model())
            graph.add(gtsam.BetweenFactorSimilarity3(e.i, e.j, to_gtsam(e.T_i_j), noise))
        return graph

    def optimise(self) -> int:
        """Re-solve from the current estimates; returns the total LM iteration count.

        Graduated kernel: a loop closing a large drift starts far out in the Cauchy tail,
        where its weight is ~0 and LM would ignore it. So the kernel starts as wide as the
        largest loop residual (almost least squares) and shrinks geometrically to
        cfg.cauchy_k; a loop that disagrees with the rest ends up down-weighted again.
        """
        start = max([np.sqrt(self.chi2(e)) for e in self.loops.values()] + [self.cfg.cauchy_k])
        stages = np.geomspace(start, self.cfg.cauchy_k, 1 + int(np.ceil(
            np.log(start / self.cfg.cauchy_k) / np.log(GNC_FACTOR))))
        iterations = 0
        for k in stages:
            initial = gtsam.Values()
            for n, T in enumerate(self.estimates):
                initial.insert(n, to_gtsam(T))
            params = gtsam.LevenbergMarquardtParams()
            params.setMaxIterations(self.cfg.max_iterations)
            optimizer = gtsam.LevenbergMarquardtOptimizer(self._factors(float(k)), initial,
                                                          params)
            result = optimizer.optimize()
            self.estimates = [from_gtsam(result.atSimilarity3(n))
                              for n in range(len(self.estimates))]
            iterations += optimizer.iterations()
        return iterations

    def relative_covariance(self, i: int, j: int) -> tuple[Sim3, np.ndarray]:
        """Current T_i_j = T_world_i^-1 T_world_j and its (7, 7) covariance from the graph's
        joint marginal of nodes i, j (loops included), GTSAM tangent order. With right
        perturbations, d(T_i^-1 T_j) = -Ad(T_j^-1 T_i) xi_i + xi_j."""
        values = gtsam.Values()
        for n, T in enumerate(self.estimates):
            values.insert(n, to_gtsam(T))
        joint = gtsam.Marginals(self._factors(self.cfg.cauchy_k), values) \
            .jointMarginalCovariance([i, j])
        T_i_j = self.estimates[i].inverse() @ self.estimates[j]
        J = np.concatenate([-to_gtsam(T_i_j.inverse()).AdjointMap(), np.eye(7)], 1)
        C = np.block([[joint.at(i, i), joint.at(i, j)], [joint.at(j, i), joint.at(j, j)]])
        return T_i_j, J @ C @ J.T

    def chi2(self, edge: Edge) -> float:
        """Whitened squared residual of an edge at the current estimates (no kernel)."""
        T_i_j = self.estimates[edge.i].inverse() @ self.estimates[edge.j]
        err = gtsam.Similarity3.Logmap(to_gtsam(edge.T_i_j).inverse() * to_gtsam(T_i_j))
        err = np.asarray(err)
        return float(err @ np.linalg.solve(edge.sigmas.covariance(), err))
