"""The depth node's GPU path without the network: uint8 images in, publishable bytes out.

    python bench/node_gpu_path.py --data <nuScenes sample folder> --out out/

Run by hand on a GPU machine. Six 1600x900 RGB images (the nuScenes sample) go through what
the node does around the network when a GPU is present, with tensors on the GPU from the
uint8 upload to one final device-to-host copy:
  upload    pinned uint8 (6, 900, 1600, 3) -> GPU (non-blocking)
  pre       preprocess_torch (official resize policy, 280 x 504, ImageNet normalisation)
  post      colours at the network resolution; depth scaling as the Predictor does
  clouds    geometry.packed_points.pack_points_batch for the 6 views (x y z rgb confidence)
  download  depth, confidence and cloud records -> pinned host buffers, one copy each
The network's outputs are stand-ins of its shapes (random depth/confidence on the GPU): the
benchmark is the overhead beyond the network. Time: CUDA-synchronised wall clock per set,
median of 50 after 10 warm-ups; stage split by CUDA events. Also reported: the host copy of
decoded images into the pinned staging buffer, and building the PointCloud2 messages from the
downloaded bytes (both host work, off the GPU).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from da3_ros.engine.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess_torch  # noqa: E402
from da3_ros.geometry.packed_points import pack_points_batch  # noqa: E402


def median_ms(fn, warmup=10, runs=50) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, required=True)
    parser.add_argument('--out', type=Path, required=True)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit('node_gpu_path: no CUDA device')
    images = [np.asarray(Image.open(p).convert('RGB'))
              for p in sorted((args.data / 'samples').glob('*CAM_*.jpg'))]
    assert len(images) == 6 and images[0].shape == (900, 1600, 3)
    staging = torch.empty((6, 900, 1600, 3), dtype=torch.uint8).pin_memory()
    def stage_images():
        for i, img in enumerate(images):
            np.copyto(staging[i].numpy(), img)

    stage_copy = median_ms(stage_images)
    K = torch.tensor([[252.0, 0, 252], [0, 252, 140], [0, 0, 1]], device='cuda')
    mean = torch.tensor(IMAGENET_MEAN, device='cuda')[:, None, None]
    std = torch.tensor(IMAGENET_STD, device='cuda')[:, None, None]
    gen = torch.Generator(device='cuda').manual_seed(0)
    raw_depth = torch.rand((6, 280, 504), device='cuda', generator=gen) * 30 + 0.5
    raw_conf = torch.rand((6, 280, 504), device='cuda', generator=gen) * 5 + 1
    out_depth = torch.empty((6, 280, 504), dtype=torch.float32).pin_memory()
    out_conf = torch.empty_like(out_depth).pin_memory()
    out_cloud = torch.empty((6 * 280 * 504, 5), dtype=torch.float32).pin_memory()
    events = [torch.cuda.Event(enable_timing=True) for _ in range(6)]
    split: dict[str, list[float]] = {k: [] for k in ('upload', 'pre', 'post', 'clouds',
                                                     'download')}

    def one_set(record=False):
        events[0].record()
        gpu = staging.to('cuda', non_blocking=True)
        events[1].record()
        x = preprocess_torch(gpu)                               # (1, 6, 3, 280, 504)
        events[2].record()
        colours = ((x[0] * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
        colours = colours.permute(0, 2, 3, 1)                   # (6, 280, 504, 3)
        depth = raw_depth * 1.0                                 # scale as the Predictor would
        events[3].record()
        clouds, _ = pack_points_batch(depth, K.expand(6, 3, 3), colours, raw_conf)
        events[4].record()
        out_depth.copy_(depth, non_blocking=True)
        out_conf.copy_(raw_conf, non_blocking=True)
        out_cloud[:len(clouds)].copy_(clouds, non_blocking=True)
        events[5].record()
        if record:
            events[5].synchronize()
            for i, key in enumerate(split):
                split[key].append(events[i].elapsed_time(events[i + 1]))
        return len(clouds)

    total = median_ms(one_set)
    for _ in range(50):
        one_set(record=True)
    torch.cuda.synchronize()
    n_points = one_set()
    torch.cuda.synchronize()

    messages_ms = None
    try:   # ROS is absent on the GPU machine; then only the GPU-side figures are reported
        from std_msgs.msg import Header

        from da3_ros.ros.pointcloud import packed_to_cloud
        per_view = n_points // 6
        messages_ms = median_ms(lambda: [packed_to_cloud(
            out_cloud[v * per_view:(v + 1) * per_view].numpy(), Header()) for v in range(6)],
            warmup=2, runs=10)
    except ImportError:
        pass
    report = {'gpu': torch.cuda.get_device_name(), 'torch': torch.__version__,
              'gpu_path_ms_per_set': total,
              'stage_ms': {k: statistics.median(v) for k, v in split.items()},
              'points_per_set': n_points,
              'host_staging_copy_ms': stage_copy,
              'host_pointcloud2_messages_ms': messages_ms}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'node_gpu_path.json').write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
