"""What the Nav2 outputs add per rig set: geometry.nav_obstacles on a rendered 6-camera scene.

    python bench/nav_cost.py --device cuda --out $OUT/nav_cost.json      # the GPU machine
    .venv/bin/python bench/nav_cost.py --device cpu --runs 5             # anywhere

The scene (test/nav_scene.py: ground plane, boxes and walls, ray-cast) is seen by a surround
rig of 6 cameras, 60 degrees apart, 1.6 m up, pitched 10 degrees down, at the network
resolution of a 1600 x 900 image at process_res 504 (504 x 280; f = 400 px). The depth node
runs nav_obstacles once per set on the depth it already holds on the device, so its extra cost
is this call plus copying the cloud and ranges to the host (included: `.cpu()` of both).
Median of --runs after --warmup, per ground fit (flat, ransac) and with the cloud or the scan
only; CUDA events on the GPU, perf_counter on the CPU. Nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'test')]

from nav_scene import camera_pose, intrinsics, render_depth  # noqa: E402

from da3_ros.geometry.nav_obstacles import NavConfig, nav_obstacles  # noqa: E402

H, W, F = 280, 504, 400.0
BOXES = np.array([[3.0, -1.0, 0.0, 3.5, 1.0, 0.8],       # a box ahead
                  [-6.0, -8.0, 0.0, -5.8, 8.0, 2.5],     # a wall behind
                  [-1.0, 4.0, 0.0, 1.0, 4.3, 1.2],       # a wall on the left
                  [1.5, -3.5, 0.0, 2.5, -2.5, 0.5]])     # a low box on the right


def rig_scene(device: str):
    """(6, H, W) depth, (6, 3, 3) K, (6, 4, 4) T_base_cam on `device`."""
    T = np.stack([camera_pose(0.0, 0.0, 1.6, math.radians(60 * i), math.radians(10))
                  for i in range(6)])
    K = intrinsics(F, W, H)
    depth = np.stack([render_depth(t, K, H, W, BOXES) for t in T])
    depth[~np.isfinite(depth)] = 0.0          # sky: invalid, as the node's masked depth
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
    return as_t(depth), as_t(np.broadcast_to(K, (6, 3, 3)).copy()), as_t(T)


def time_ms(fn, device: str, warmup: int, runs: int) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--runs', type=int, default=50)
    ap.add_argument('--warmup', type=int, default=5)
    ap.add_argument('--out', type=Path)
    args = ap.parse_args()
    depth, K, T = rig_scene(args.device)
    report = {'device': (torch.cuda.get_device_name(args.device)
                         if args.device.startswith('cuda') else 'cpu'),
              'torch': torch.__version__, 'views': 6, 'hw': [H, W], 'runs': args.runs,
              'cases': {}}
    for fit in ('flat', 'ransac'):
        cfg = NavConfig(ground_fit=fit, range_max_m=10.0, max_height_m=2.0)
        for want_cloud in (True, False):
            def call(cfg=cfg, want_cloud=want_cloud):
                out = nav_obstacles(depth, K, T, cfg, want_cloud=want_cloud)
                return out.obstacles.cpu(), out.ranges.cpu()
            cloud, ranges = call()
            name = f"{fit}_{'cloud_and_scan' if want_cloud else 'scan_only'}"
            report['cases'][name] = {
                'ms': time_ms(call, args.device, args.warmup, args.runs),
                'cloud_points': int(cloud.shape[0]),
                'scan_finite': int(torch.isfinite(ranges).sum()), 'scan_bins': len(ranges)}
            print(name, report['cases'][name], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
