"""Issue 18: look-alike places, opposite-direction revisits with a surround rig, terrain.

Closed-form references: the chain covariance against Monte Carlo sampling through GTSAM's
own Exp/Log; ATE with evo (test_system_sim.ate_m). The simulator's own inputs (terrain,
look-alike places) are checked in test/sim/."""
from __future__ import annotations

import gtsam
import numpy as np
import pytest
from test_system_sim import ate_m

from da3_ros.geometry.sim3 import Sim3, rotation_from_rotvec
from da3_ros.sim.predictor import (
    PROFILES,
    SimCamera,
    SimulatedPredictor,
    surround_rig,
)
from da3_ros.sim.routes import aliasing_route, opposite_route
from da3_ros.slam.loop_gate import GateConfig, chain_relative
from da3_ros.slam.loops import LoopConfig
from da3_ros.slam.pose_graph import Edge, EdgeSigmas, from_gtsam, to_gtsam
from da3_ros.slam.protocol import Rig
from da3_ros.slam.system import SlamSystem, count_false

SMALL = SimCamera(hw=(12, 40))
OLD_ACCEPTANCE = dict(gate=GateConfig(drift_gate=False))


def test_chain_covariance_matches_monte_carlo(rng):
    """chain_relative's first-order covariance against 3000 sampled chains, each edge
    perturbed as the BetweenFactor models it (M Exp(xi)), the error read with Logmap."""
    edges = []
    for k in range(6):
        T = Sim3(float(np.exp(rng.normal(0, 0.02))), rotation_from_rotvec(
            rng.normal(0, 0.1, (1, 3)))[0], rng.normal(0, 1, 3) + [0, 0, 20])
        edges.append(Edge(k, k + 1, T, EdgeSigmas(0.004, 0.05, 0.003, 0.2, (0.0, 0.0, 1.0))))
    T_chain, C = chain_relative(edges)
    samples = []
    for _ in range(3000):
        S = gtsam.Similarity3()
        for e in edges:
            xi = rng.multivariate_normal(np.zeros(7), e.sigmas.covariance())
            S = S * to_gtsam(e.T_i_j) * gtsam.Similarity3.Expmap(xi)
        samples.append(gtsam.Similarity3.Logmap(to_gtsam(T_chain).inverse() * S))
    C_mc = np.cov(np.array(samples).T)
    sigma = np.sqrt(np.diag(C))
    assert np.allclose(np.sqrt(np.diag(C_mc)), sigma, rtol=0.08)      # sampling: ~1.3 %
    assert (np.abs(C_mc - C) / np.outer(sigma, sigma)).max() < 0.08
    composed = from_gtsam(to_gtsam(edges[0].T_i_j))
    for e in edges[1:]:
        composed = composed @ e.T_i_j
    assert np.allclose(composed.matrix(), T_chain.matrix())


def test_graph_marginal_of_an_odometry_chain_equals_the_propagated_chain(rng):
    """Two independent computations of one covariance: GTSAM's joint marginal of nodes 1, 5
    of a loop-free graph, and chain_relative's adjoint propagation of edges 1..5."""
    from da3_ros.slam.pose_graph import GraphConfig, PoseGraph
    graph = PoseGraph(GraphConfig())
    graph.add_node(Sim3.identity())
    for k in range(6):
        T = Sim3(float(np.exp(rng.normal(0, 0.02))), rotation_from_rotvec(
            rng.normal(0, 0.2, (1, 3)))[0], rng.normal(0, 2, 3) + [0, 0, 30])
        graph.add_node(graph.estimates[-1] @ T)
        graph.add_odometry(Edge(k, k + 1, T, EdgeSigmas(0.003, 0.08, 0.004, 0.3,
                                                        tuple(T.R.T @ T.t / np.linalg.norm(T.t)))))
    T_graph, C_graph = graph.relative_covariance(1, 5)
    T_chain, C_chain = chain_relative(graph.odometry[1:5])
    assert np.allclose(T_graph.matrix(), T_chain.matrix(), atol=1e-9)
    scale = np.sqrt(np.outer(np.diag(C_chain), np.diag(C_chain)))
    assert (np.abs(C_graph - C_chain) / scale).max() < 1e-3


@pytest.fixture(scope='module')
def run(small_config):
    """run(gt, seed, rig=None, **config changes) -> finished SlamSystem (nominal profile)."""
    def run_(gt, seed, rig=None, **cfg):
        sim = SimulatedPredictor(gt, PROFILES['nominal'], seed, rig=rig, camera=SMALL)
        slam = SlamSystem(sim, small_config(**cfg), rig=rig)
        for frame in sim.frames():
            slam.add_frame(frame)
        slam.finish()
        return slam
    return run_


@pytest.fixture(scope='module')
def corridor():
    return aliasing_route(scale=0.5)


def test_look_alike_loops_fool_the_old_acceptance_but_not_the_drift_gate(corridor, run):
    """Before: wrong loops between look-alike places agree pairwise and enter the graph.
    After: none does, and the true revisit of the stretch still closes."""
    pos = corridor.positions
    old = run(corridor, 7, **OLD_ACCEPTANCE)
    new = run(corridor, 7)
    assert count_false(old.stats.added_pairs, pos) >= 2
    assert count_false(new.stats.added_pairs, pos) == 0
    assert new.stats.loops_failed_drift + new.stats.candidates_failed_drift >= 4
    assert len(new.stats.added_pairs) >= 2
    assert ate_m(corridor, new.world_poses()) < ate_m(corridor, old.world_poses())


@pytest.fixture(scope='module')
def opposite():
    return opposite_route(scale=0.4)


def test_opposite_direction_revisit_closes_only_with_per_camera_matching(opposite, run):
    """A 3-camera rig (front, right, rear) drives a street back the other way: its
    frame-mean descriptor differs (no candidate), the rear camera's matches the front
    camera's of then; the loop composes the cameras' poses into the body loop."""
    rig = surround_rig((0.0, 90.0, 180.0))
    old = run(opposite, 3, rig, loop=LoopConfig(exclude_frames=100, window=10, nms_frames=10,
                                                 per_camera=False))
    new = run(opposite, 3, rig)
    pos = opposite.positions
    assert old.stats.loops_accepted == 0
    assert new.stats.loops_accepted >= 2 and count_false(new.stats.added_pairs, pos) == 0
    assert ate_m(opposite, new.world_poses()) < 0.7 * ate_m(opposite, old.world_poses())


def test_mono_camera_never_closes_an_opposite_direction_revisit(opposite, run):
    slam = run(opposite, 3, Rig.mono())
    assert slam.stats.loop_candidates == 0 and slam.stats.loops_accepted == 0


def test_per_camera_retrieval_names_the_cameras_that_matched():
    """Two-camera rig, front = e0, rear = e1 then; driven back, front sees e1, rear e0: the
    frame means are orthogonal (no candidate), per camera a cross pair is found."""
    from da3_ros.slam.loops import LoopDatabase
    e = np.eye(4, dtype=np.float32)
    then, now = np.stack([e[0], e[1]])[None], np.stack([e[1], e[0]])[None]      # (1, 2, D)
    cfg = LoopConfig(exclude_frames=10, nms_frames=0, top_k=2)
    db = LoopDatabase(cfg)
    db.add(np.array([0]), then)
    got = [(c.query_camera, c.match_camera) for c in db.query(np.array([50]), now)]
    assert got in ([(0, 1)], [(1, 0)])            # one frame pair: one loop chunk (NMS)
    assert db.revisits(np.array([50]), now).all() and len(db.frame_ids) == 1
    mean = LoopDatabase(cfg)
    mean.add(np.array([0]), np.array([[1, 1, 0, 0]], np.float32) / np.sqrt(2))
    assert mean.query(np.array([50]), np.array([[1, -1, 0, 0]], np.float32) / np.sqrt(2)) == []
