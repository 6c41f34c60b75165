"""GTSAM Sim(3) pose graph: exact graphs are solved exactly, a wrong loop is damped by the
Cauchy kernel, and the metric prior pulls scales to 1."""
import numpy as np

from da3_ros.geometry.sim3 import Sim3, rotation_from_rotvec
from da3_ros.slam.pose_graph import Edge, EdgeSigmas, GraphConfig, PoseGraph

SIG = EdgeSigmas(np.deg2rad(0.1), 0.1, 0.01)


def _ring(rng, n=12):
    """Chunk poses around a square-ish loop with varying scales (true T_world_chunk)."""
    poses = []
    for k in range(n):
        yaw = 2 * np.pi * k / n
        R = rotation_from_rotvec(np.array([[0, 0, yaw]]))[0]
        poses.append(Sim3(float(np.exp(rng.normal(0, 0.05))) if k else 1.0, R,
                          np.array([50 * np.cos(yaw), 50 * np.sin(yaw), 0.0]) if k else
                          np.array([50.0, 0.0, 0.0])))
    return poses


def _graph(truth, drift, cfg=None):
    g = PoseGraph(cfg or GraphConfig())
    g.add_node(truth[0])
    for k in range(1, len(truth)):
        rel = truth[k - 1].inverse() @ truth[k] @ drift
        g.add_node(g.estimates[-1] @ rel)
        g.add_odometry(Edge(k - 1, k, rel, SIG))
    return g


def _err_m(g, truth):
    return max(np.linalg.norm(a.t - b.t) for a, b in zip(g.estimates, truth, strict=True))


def _end_m(g, truth):
    return np.linalg.norm(g.estimates[-1].t - truth[-1].t)


def _rms_m(g, truth):
    return np.sqrt(np.mean([np.sum((a.t - b.t) ** 2) for a, b in zip(g.estimates, truth,
                                                                       strict=True)]))


def test_exact_loop_removes_drift(rng):
    truth = _ring(rng)
    # 1 % scale and 0.1 deg of yaw error per edge: about 1 sigma each, as odometry should be
    drift = Sim3(1.01, rotation_from_rotvec(np.array([[0, 0, 0.00175]]))[0], np.zeros(3))
    g = _graph(truth, drift)
    before_end, before_rms = _end_m(g, truth), _rms_m(g, truth)
    g.add_loop(Edge(0, len(truth) - 1, truth[0].inverse() @ truth[-1], SIG))
    g.optimise()
    assert before_end > 3.0
    assert _end_m(g, truth) < 0.1 * before_end
    assert _rms_m(g, truth) < 0.6 * before_rms


def test_exact_graph_is_a_fixed_point(rng):
    truth = _ring(rng)
    g = _graph(truth, Sim3.identity())
    g.add_loop(Edge(0, len(truth) - 1, truth[0].inverse() @ truth[-1], SIG))
    g.optimise()
    assert _err_m(g, truth) < 1e-6
    assert g.chi2(g.loops[0]) < 1e-9


def test_wrong_loop_among_true_ones_is_down_weighted(rng):
    truth = _ring(rng)
    wrong = Sim3(1.0, rotation_from_rotvec(np.array([[0, 0, 0.5]]))[0], np.array([80., 0, 0]))

    def solve(cauchy_k):
        g = _graph(truth, Sim3.identity(), GraphConfig(cauchy_k=cauchy_k))
        for i, j in ((0, 11), (1, 10), (2, 9)):
            g.add_loop(Edge(i, j, truth[i].inverse() @ truth[j], SIG))
        g.add_loop(Edge(0, 6, truth[0].inverse() @ truth[6] @ wrong, SIG))
        g.optimise()
        return g
    robust, plain = solve(3.0), solve(1e9)                   # 1e9 ~ no kernel
    assert _rms_m(plain, truth) > 1.0
    assert _rms_m(robust, truth) < 0.05 * _rms_m(plain, truth)
    assert robust.chi2(robust.loops[3]) > 100 * max(robust.chi2(robust.loops[i])
                                                    for i in range(3))


def test_metric_prior_pulls_scale_towards_one(rng):
    truth = [Sim3(1.0, np.eye(3), np.array([10.0 * k, 0, 0])) for k in range(10)]
    drift = Sim3(1.02, np.eye(3), np.zeros(3))                  # 2 % scale drift per edge
    free = _graph(truth, drift)
    prior = _graph(truth, drift, GraphConfig(metric_prior_sigma=0.01))
    prior.optimise()
    assert abs(np.log(free.estimates[-1].s)) > 0.15
    assert abs(np.log(prior.estimates[-1].s)) < 0.5 * abs(np.log(free.estimates[-1].s))
