"""SLAM backend benchmark on simulated chunks: ATE / RPE with evo, loop
precision, backend time vs real time, and peak memory.

    .venv/bin/python bench/slam_city.py --seeds 0 1 2 3 4 --jobs 2 --out /tmp/city.json
    .venv/bin/python bench/slam_city.py --memory          # peak RSS for two lengths
    .venv/bin/python bench/slam_city.py --kitti --seeds 0 # KITTI 00-10 GT, nominal profile

Backend time = SlamSystem time minus time inside the (simulated) predictor; the real-time
budget is frames / 10 Hz. Run by hand; nothing here is asserted.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                       # the checkout, not an installed copy

import numpy as np  # noqa: E402

from da3_ros.sim.evaluation import ate_rmse_m, rpe_per_100m  # noqa: E402
from da3_ros.sim.predictor import (  # noqa: E402
    PROFILES,
    FalseLoopInjector,
    SimulatedPredictor,
    plan_false_loops,
)
from da3_ros.sim.routes import GroundTruth, city_grid, load_kitti  # noqa: E402
from da3_ros.slam.pose_graph import GraphConfig  # noqa: E402
from da3_ros.slam.system import SlamConfig, SlamSystem, count_false  # noqa: E402

KITTI_DIR = ROOT.parent / 'shared/data/trajectories/kitti_odometry'

# name: (profile, loops on, false loops injected, metric prior sigma)
SCENARIOS = {
    'noiseless': ('noiseless', True, 0, None),
    'nominal-open': ('nominal', False, 0, None),
    'nominal-open-prior': ('nominal', False, 0, 0.07),
    'nominal-loops': ('nominal', True, 0, None),
    'nominal-loops-3false': ('nominal', True, 3, None),
    'hard-open': ('hard', False, 0, None),
    'hard-loops-3false': ('hard', True, 3, None),
}


def run_one(gt: GroundTruth, scenario: str, seed: int) -> dict:
    profile, loops, n_false, prior = SCENARIOS[scenario]
    false = plan_false_loops(gt, n_false, np.random.default_rng(1000 + seed)) if n_false else []
    sim = SimulatedPredictor(gt, PROFILES[profile], seed, false_loops=false)
    cfg = SlamConfig(loops_enabled=loops, graph=GraphConfig(metric_prior_sigma=prior))
    slam = SlamSystem(sim, cfg, candidate_hook=FalseLoopInjector(false) if false else None)
    for frame in sim.frames():
        slam.add_frame(frame)
    slam.finish()
    T = slam.world_poses()
    rpe_m, rpe_deg = rpe_per_100m(gt.T_world_cam, T, gt.stamps_s)
    s = slam.stats
    return {'sequence': gt.name, 'scenario': scenario, 'seed': seed, 'frames': len(gt),
            'length_m': gt.length_m, 'ate_m': ate_rmse_m(gt.T_world_cam, T, gt.stamps_s),
            'rpe_m_per_100m': rpe_m, 'rpe_deg_per_100m': rpe_deg, 'chunks': s.chunks,
            'loops_in_graph': len(slam.graph.loops), 'loops_added': s.loops_accepted,
            'loops_removed': s.loops_removed, 'loop_candidates': s.loop_candidates,
            'false_added': count_false(s.added_pairs, gt.positions),
            'false_in_graph': count_false(s.accepted_pairs, gt.positions),
            'injected_measured': len({(f.query, f.match) for f in false}
                                     & set(s.measured_pairs)),
            'injected_pregated': len({(f.query, f.match) for f in false}
                                     & set(s.pregated_pairs)),
            'loops_failed_drift': s.loops_failed_drift,
            'candidates_failed_drift': s.candidates_failed_drift,
            'backend_s': s.total_s - s.network_s, 'network_s': s.network_s,
            'realtime_s': float(gt.stamps_s[-1] - gt.stamps_s[0]),
            'voxels': len(slam.map), 'map_mb': slam.map.nbytes / 2**20,
            'frame_store_mb': slam.store.nbytes / 2**20,
            'loop_db_mb': slam.loop_db.nbytes / 2**20,
            'fallback_edges': s.fallback_edges}


def _job(args):
    name, scenario, seed = args
    gt = city_grid() if name == 'city' else load_kitti(KITTI_DIR / f'{name}.txt')
    return run_one(gt, scenario, seed)


def summarise(rows: list[dict]):
    print('| sequence | scenario | seeds | ATE mean [m] | ATE max [m] | RPE [m/100 m] | '
          'RPE [deg/100 m] | loops in graph | false added | backend [s] / real time [s] |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    keys = sorted({(r['sequence'], r['scenario']) for r in rows},
                  key=lambda k: (k[0], list(SCENARIOS).index(k[1])))
    for seq, sc in keys:
        rs = [r for r in rows if r['sequence'] == seq and r['scenario'] == sc]
        ate = np.array([r['ate_m'] for r in rs])
        print(f"| {seq} | {sc} | {len(rs)} | {ate.mean():.3f} | {ate.max():.3f} | "
              f"{np.mean([r['rpe_m_per_100m'] for r in rs]):.2f} | "
              f"{np.mean([r['rpe_deg_per_100m'] for r in rs]):.3f} | "
              f"{np.mean([r['loops_in_graph'] for r in rs]):.1f} | "
              f"{sum(r['false_added'] for r in rs)} | "
              f"{np.mean([r['backend_s'] for r in rs]):.1f} / {rs[0]['realtime_s']:.0f} |")


def laps(n: int) -> GroundTruth:
    """The 4.7 km grid driven n times (n x 4.7 km over the same area; a 250 m jump from
    the end of one lap to the start of the next)."""
    lap = city_grid()
    period = lap.stamps_s[-1] + lap.stamps_s[1] - lap.stamps_s[0]
    return GroundTruth(f'city-grid-{n}-laps',
                       np.concatenate([lap.stamps_s + i * period for i in range(n)]),
                       np.concatenate([lap.T_world_cam] * n))


def memory_child(block_m: float):
    """block_m > 0: one lap of that block size; block_m = -n: n laps of the 250 m grid."""
    gt = laps(int(-block_m)) if block_m < 0 else city_grid(block_m=block_m)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # imports, GT
    row = run_one(gt, 'nominal-loops', 0)
    row['rss_before_run_mb'] = before
    row['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(row))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    ap.add_argument('--scenarios', nargs='+', default=list(SCENARIOS))
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--kitti', action='store_true', help='KITTI 00-10, nominal-loops')
    ap.add_argument('--memory', action='store_true')
    ap.add_argument('--memory-child', type=float, help=argparse.SUPPRESS)
    ap.add_argument('--out', type=Path)
    args = ap.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child)
    if args.memory:
        # 4.7 km; 9.4 km over twice the area; 9.4 and 14.1 km over the same area (laps)
        for block_m in (250.0, 500.0, -2.0, -3.0):
            out = subprocess.run([sys.executable, __file__, '--memory-child', str(block_m)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{r['sequence']}: {r['length_m']:.0f} m, {r['frames']} frames: peak RSS "
                  f"{r['peak_rss_mb']:.0f} MB (before the run {r['rss_before_run_mb']:.0f} MB), "
                  f"voxels {r['voxels']}, map {r['map_mb']:.1f} MB, frame store "
                  f"{r['frame_store_mb']:.1f} MB, loop db {r['loop_db_mb']:.1f} MB,"
                  f" backend {r['backend_s']:.0f} s, ATE {r['ate_m']:.2f} m")
        return
    if args.kitti:
        jobs = [(f'{i:02d}', 'nominal-loops', s) for i in range(11) for s in args.seeds]
    else:
        jobs = [('city', sc, s) for sc in args.scenarios for s in args.seeds
                if sc != 'noiseless' or s == args.seeds[0]]
    with Pool(args.jobs) as pool:
        rows = pool.map(_job, jobs, chunksize=1)
    summarise(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == '__main__':
    main()
