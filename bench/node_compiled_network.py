"""The depth node's network step on CUDA, eager vs `compile: true`, on one real camera set.

    python bench/node_compiled_network.py --data <nuScenes sample folder> --out out/

Run by hand on a GPU machine (no ROS needed). What the depth node runs per set on CUDA
between the upload of the uint8 images and the packing of the outputs
(ros/depth/pipeline.py): Predictor.predict_tensors over a TorchBackend with precision bf16,
eager (`compile: false`, the node's default) and with `compile: true` (engine.compiled.FAST
through TorchBackend(compile=True)). Six 1600x900 nuScenes images, process_res 504
(6 x 280 x 504), seeded random weights, the same in both. Time: CUDA-synchronised wall clock
of predict_tensors per set (preprocessing included, upload excluded), median of 20 after
warm-up (the compiled backend's first call compiles; its time is reported apart). Also the
agreement of the two: max |compiled - eager| / max |eager| of depth and confidence, and the
largest difference of the extrinsics (the compiled variant runs the heads in bf16 too).
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

from da3_ros.engine.device_outputs import DeviceOutputs  # noqa: E402
from da3_ros.engine.predictor import Predictor  # noqa: E402
from da3_ros.engine.torch_backend import TorchBackend  # noqa: E402
from da3_ros.model import build  # noqa: E402


def timed_ms(fn) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def run_variant(model: str, compile: bool, images: torch.Tensor, runs: int) -> dict:
    torch.manual_seed(0)
    backend = TorchBackend(build(model), 'cuda', 'bf16', compile=compile)
    step = Predictor(backend).predict_tensors
    first_ms = timed_ms(lambda: step(images))
    for _ in range(5):
        step(images)
    times = [timed_ms(lambda: step(images)) for _ in range(runs)]
    pred = step(images)
    result = {'first_call_ms': first_ms, 'median_ms': statistics.median(times),
              'depth': pred.depth.float().cpu().numpy(),
              'confidence': pred.confidence.float().cpu().numpy(),
              'T_cam_world': np.asarray(pred.T_cam_world.cpu() if torch.is_tensor(
                  pred.T_cam_world) else pred.T_cam_world, np.float64),
              'peak_mib': torch.cuda.max_memory_allocated() / 2**20}
    return result


def fresh_gpu() -> None:
    """Free the previous variant's memory and reset the peak counter."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, required=True)
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--models', nargs='+', default=['da3-small', 'da3-large'])
    parser.add_argument('--runs', type=int, default=20)
    args = parser.parse_args()
    rgb = [np.asarray(Image.open(p).convert('RGB'))
           for p in sorted((args.data / 'samples').glob('*CAM_*.jpg'))]
    images = DeviceOutputs('cuda').upload(rgb).clone()
    report = {'gpu': torch.cuda.get_device_name(), 'torch': torch.__version__,
              'views': len(rgb), 'input_hw': list(rgb[0].shape[:2]), 'models': {}}
    for model in args.models:
        fresh_gpu()
        eager = run_variant(model, False, images, args.runs)
        fresh_gpu()
        compiled = run_variant(model, True, images, args.runs)

        def rel(name, a=compiled, b=eager):
            return float(np.abs(a[name] - b[name]).max() / np.abs(b[name]).max())
        row = {'eager_ms': eager['median_ms'], 'compiled_ms': compiled['median_ms'],
               'compiled_first_call_ms': compiled['first_call_ms'],
               'eager_peak_mib': eager['peak_mib'], 'compiled_peak_mib': compiled['peak_mib'],
               'depth_rel_diff': rel('depth'), 'confidence_rel_diff': rel('confidence'),
               'extrinsics_max_abs_diff': float(np.abs(compiled['T_cam_world']
                                                       - eager['T_cam_world']).max()),
               'network_hw': list(eager['depth'].shape[-2:])}
        report['models'][model] = row
        print(model, json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'node_compiled_network.json').write_text(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
