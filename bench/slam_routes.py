"""Issue 18 routes on simulated chunks: look-alike places, a revisit driven the other way
with a 6-camera surround rig, hills. Before (frame-level descriptors, no drift gate) and
after (per-camera retrieval, drift gate) measured in the same run, plus open loop.

    .venv/bin/python bench/slam_routes.py --seeds 0 1 2 3 4 --jobs 2 --out /tmp/routes.json
    .venv/bin/python bench/slam_routes.py --routes corridor --variants before after --seeds 100

"look-alike candidates" = retrieved pairs (after NMS) truly > 30 m apart, counted per pass
of the corridor's look-alike stretch; "false added" = loop edges that ever entered the
graph between frames truly > 30 m apart; "true added" = those within 30 m. Run by hand;
nothing here is asserted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                       # the checkout, not an installed copy

import numpy as np  # noqa: E402

from da3_ros.sim.evaluation import ate_rmse_m, rpe_per_100m  # noqa: E402
from da3_ros.sim.predictor import (  # noqa: E402
    NUSCENES_YAWS_DEG,
    PROFILES,
    SimulatedPredictor,
    surround_rig,
)
from da3_ros.sim.routes import aliasing_route, hilly_route, opposite_route  # noqa: E402
from da3_ros.slam.loop_gate import GateConfig  # noqa: E402
from da3_ros.slam.loops import LoopConfig  # noqa: E402
from da3_ros.slam.system import SlamConfig, SlamSystem, count_false  # noqa: E402

# route, rig camera yaws (None: one forward camera)
ROUTES = {'corridor': (aliasing_route, None), 'opposite': (opposite_route, NUSCENES_YAWS_DEG),
          'opposite3': (opposite_route, (0.0, 90.0, 180.0)), 'hilly': (hilly_route, None)}
VARIANTS = {
    'open': dict(loops_enabled=False),
    'before': dict(gate=GateConfig(drift_gate=False), loop=LoopConfig(per_camera=False)),
    'after': {},
}
FAR_M = 30.0


class CandidateLog:
    """Candidate hook that records every retrieved pair (query, match) and passes them on."""

    def __init__(self):
        self.pairs: list[tuple[int, int]] = []

    def __call__(self, query_frames, candidates):
        self.pairs.extend((c.query, c.match) for c in candidates)
        return candidates


def run_one(route: str, profile: str, variant: str, seed: int) -> dict:
    make, yaws = ROUTES[route]
    gt = make()
    rig = None if yaws is None else surround_rig(yaws)
    cameras = 1 if yaws is None else len(yaws)
    sim = SimulatedPredictor(gt, PROFILES[profile], seed, rig=rig)
    log = CandidateLog()
    slam = SlamSystem(sim, SlamConfig(**VARIANTS[variant]), rig=rig, candidate_hook=log)
    t0 = time.perf_counter()
    for frame in sim.frames():
        slam.add_frame(frame)
    slam.finish()
    T, pos, s = slam.world_poses(), gt.positions, slam.stats
    rpe_m, rpe_deg = rpe_per_100m(gt.T_world_cam, T, gt.stamps_s)
    dist = {p: float(np.linalg.norm(pos[p[0]] - pos[p[1]])) for p in set(s.measured_pairs)}
    d2 = [(float(d), dist.get((q, m), float(np.linalg.norm(pos[q] - pos[m]))) <= FAR_M)
          for q, m, d in s.drift_d2]
    far = [p for p in log.pairs if np.linalg.norm(pos[p[0]] - pos[p[1]]) > FAR_M]
    return {'route': gt.name, 'route_key': route, 'profile': profile, 'variant': variant,
            'seed': seed, 'cameras': cameras, 'frames': len(gt), 'length_m': gt.length_m,
            'ate_m': ate_rmse_m(gt.T_world_cam, T, gt.stamps_s), 'rpe_m_per_100m': rpe_m,
            'rpe_deg_per_100m': rpe_deg, 'loops_in_graph': len(slam.graph.loops),
            'false_added': count_false(s.added_pairs, pos, FAR_M),
            'true_added': len(s.added_pairs) - count_false(s.added_pairs, pos, FAR_M),
            'false_in_graph': count_false(s.accepted_pairs, pos, FAR_M),
            'lookalike_candidates': len(far), 'candidates': len(log.pairs),
            'measured': len(s.measured_pairs),
            'measured_false': sum(d > FAR_M for d in dist.values()),
            'failed_quality': s.loops_failed_quality, 'failed_drift': s.loops_failed_drift,
            'drift_d2_true': [d for d, ok in d2 if ok], 'drift_d2_false': [d for d, ok in d2
                                                                           if not ok],
            'loop_db_mb': slam.loop_db.nbytes / 2**20, 'voxels': len(slam.map),
            'backend_s': s.total_s - s.network_s, 'wall_s': time.perf_counter() - t0}


def _job(args):
    return run_one(*args)


def summarise(rows: list[dict]):
    print('| route | cameras | profile | variant | seeds | ATE mean [m] | ATE max [m] | '
          'RPE [m/100 m] | look-alike cand. (mean) | measured false (mean) | '
          'false added (all seeds) | true added (mean) | drift-rejected (mean) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    keys = sorted({(r['route_key'], r['profile'], r['variant']) for r in rows},
                  key=lambda k: (list(ROUTES).index(k[0]), k[1], list(VARIANTS).index(k[2])))
    for route, profile, variant in keys:
        rs = [r for r in rows if (r['route_key'], r['profile'], r['variant'])
              == (route, profile, variant)]
        ate = np.array([r['ate_m'] for r in rs])
        mean = {k: np.mean([r[k] for r in rs]) for k in (
            'rpe_m_per_100m', 'lookalike_candidates', 'measured_false', 'true_added',
            'failed_drift')}
        print(f"| {rs[0]['route']} | {rs[0]['cameras']} | {profile} | {variant} | {len(rs)} | "
              f"{ate.mean():.2f} | {ate.max():.2f} | {mean['rpe_m_per_100m']:.2f} | "
              f"{mean['lookalike_candidates']:.1f} | {mean['measured_false']:.1f} | "
              f"{sum(r['false_added'] for r in rs)} | {mean['true_added']:.1f} | "
              f"{mean['failed_drift']:.1f} |")
    for route, profile in sorted({(r['route_key'], r['profile']) for r in rows}):
        per = {v: {r['seed']: r['ate_m'] for r in rows if (r['route_key'], r['profile'],
                                                            r['variant']) == (route, profile, v)}
               for v in VARIANTS}
        print(f'{route} {profile} per seed ATE: ' + '; '.join(
            f"{v}: " + ' / '.join(f'{per[v][s]:.2f}' for s in sorted(per[v]))
            for v in VARIANTS if per[v]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    ap.add_argument('--routes', nargs='+', default=list(ROUTES), choices=list(ROUTES))
    ap.add_argument('--profiles', nargs='+', default=['nominal', 'hard'])
    ap.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--out', type=Path)
    args = ap.parse_args()
    jobs = [(r, p, v, s) for r in args.routes for p in args.profiles for v in args.variants
            for s in args.seeds]
    with Pool(args.jobs) as pool:
        rows = pool.map(_job, jobs, chunksize=1)
    summarise(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == '__main__':
    main()
