"""The depth node's GPU path without the network: uint8 images in, publishable arrays out.

    python bench/node_gpu_path.py --data <nuScenes sample folder> --out out/

Run by hand on a GPU machine. Six 1600x900 RGB images (the nuScenes sample) go through the
code the depth node runs around the network on CUDA (ros/depth_pipeline.py), with tensors on
the GPU from the uint8 upload to one final device-to-host copy:
  upload    engine.device_outputs.DeviceOutputs.transfer: one non-blocking copy of the six
            images from the pinned staging buffer to the GPU (the host copy into that buffer,
            DeviceOutputs.stage, is host work of the node and is reported apart, with 1 and 4
            threads)
  pre       engine.preprocess.preprocess_torch_fast (torch.compile of preprocess_torch:
            the official resize policy to 280 x 504, ImageNet normalisation)
  outputs   DeviceOutputs.download: nearest-pixel colours, back-projection, filters,
            records (x y z rgb confidence) per camera and, for the fused cloud, the same
            records in the fixed frame, compaction (replayed as one CUDA graph); then depth,
            confidence and records to pinned host buffers in one synchronised round
The network is replaced by tensors of its output shapes (random depth/confidence on the GPU):
the benchmark is the overhead beyond the network. Time: CUDA-synchronised wall clock per set,
median of 50 after 10 warm-ups; the split by CUDA events. Variants: with and without the
fused cloud, without the CUDA graph, all eager (no torch.compile, no graph). Also: a pageable
upload without staging, host staging with 1 and 4 threads, the whole set including staging,
and the agreement of the compiled and eager results.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from da3_ros.engine.device_outputs import DeviceOutputs  # noqa: E402
from da3_ros.engine.prediction import TensorPrediction  # noqa: E402
from da3_ros.engine.predictor import _view_geometry  # noqa: E402
from da3_ros.engine.preprocess import (  # noqa: E402
    IMAGENET_STD,
    Preprocessed,
    plan_resize,
    preprocess,
    preprocess_torch,
    preprocess_torch_fast,
)

CLOUD = SimpleNamespace(min_confidence=None, min_range_m=0.0, max_range_m=200.0, stride=1,
                        voxel_size_m=0.0)     # the depth node's defaults


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


def stand_in_prediction(S: int, views) -> TensorPrediction:
    """Network outputs of the right shapes on the GPU; cameras on the host as the Predictor."""
    gen = torch.Generator(device='cuda').manual_seed(0)
    depth = torch.rand((S, 280, 504), device='cuda', generator=gen) * 30 + 0.5
    conf = torch.rand((S, 280, 504), device='cuda', generator=gen) * 5 + 1
    K = np.tile(np.array([[252.0, 0, 252], [0, 252, 140], [0, 0, 1]]), (S, 1, 1))
    T = np.tile(np.eye(4), (S, 1, 1))
    T[:, 0, 3] = np.arange(S)
    return TensorPrediction(depth, conf, T, K, views, depth_scale=np.ones(S))


def run_path(images, pred, device: DeviceOutputs, pre, fused: bool, split: bool) -> dict:
    """Median wall clock of transfer + pre + outputs per set (images already staged), and
    (split) the stage times."""
    T_fixed = np.tile(np.eye(4), (len(images), 1, 1)) if fused else None
    events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
    stages: dict[str, list[float]] = {'upload': [], 'pre': [], 'outputs': []}
    staged = device.stage(images)

    def one_set(record=False):
        events[0].record()
        dev = device.transfer(staged)
        events[1].record()
        x = pre(dev)
        events[2].record()
        out = device.download(pred, dev, CLOUD, True, T_fixed)
        events[3].record()
        if record:
            events[3].synchronize()
            for i, key in enumerate(stages):
                stages[key].append(events[i].elapsed_time(events[i + 1]))
        return x, out

    result = {'ms_per_set': median_ms(one_set)}
    if split:
        for _ in range(50):
            one_set(record=True)
        result['stage_ms'] = {k: statistics.median(v) for k, v in stages.items()}
    x, out = one_set()
    result['points_per_set'] = int(sum(len(c) for c in out.clouds))
    return result, x, out


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
    S = len(images)
    plan = plan_resize(900, 1600)
    zero = ((0, 0),) * S
    views = _view_geometry(Preprocessed(torch.empty(1, S, 3, 280, 504), (plan,) * S, zero,
                                        zero))
    pred = stand_in_prediction(S, views)
    report = {'gpu': torch.cuda.get_device_name(), 'torch': torch.__version__}

    fast, eager = DeviceOutputs('cuda'), DeviceOutputs('cuda', compile=False, graphs=False)
    no_graph = DeviceOutputs('cuda', graphs=False)
    start = time.perf_counter()
    fast.download(pred, fast.upload(images), CLOUD, True, np.tile(np.eye(4), (S, 1, 1)))
    preprocess_torch_fast(fast.upload(images))
    torch.cuda.synchronize()
    report['first_call_compile_s'] = time.perf_counter() - start
    for name, device, pre, fused in (('compiled_fused', fast, preprocess_torch_fast, True),
                                     ('compiled', fast, preprocess_torch_fast, False),
                                     ('compiled_fused_no_graph', no_graph,
                                      preprocess_torch_fast, True),
                                     ('eager_fused', eager, preprocess_torch, True)):
        report[name], x, out = run_path(images, pred, device, pre, fused, split=True)
        report[name].update(fast_vs_eager_pre_max_abs=float(
            (x - preprocess_torch(device.upload(images))).abs().max()))
        if name == 'eager_fused':
            ref = out
    got = fast.download(pred, fast.upload(images), CLOUD, True, np.tile(np.eye(4), (S, 1, 1)))
    from da3_ros.engine.preprocess import _fast_core
    report['compile_fell_back'] = {'records': fast._records.failed,
                                   'preprocess': _fast_core().failed}
    report['cuda_graph_packing'] = fast.graphs
    std_u8 = torch.tensor(IMAGENET_STD)[:, None, None] * 255
    diff_u8 = ((preprocess_torch_fast(fast.upload(images)).cpu() - preprocess(images).images)
               .abs() * std_u8)
    report['preprocess_fast_vs_cv2_uint8'] = {'max': float(diff_u8.max()),
                                              'mean': float(diff_u8.mean())}
    report['compiled_vs_eager_records'] = {
        'counts_equal': [len(a) for a in got.clouds] == [len(b) for b in ref.clouds],
        'max_abs_xyz': max(float(np.abs(a[:, :3] - b[:, :3]).max())
                           for a, b in zip(got.clouds, ref.clouds, strict=True)),
        'rgb_conf_equal': all(np.array_equal(a[:, 3:], b[:, 3:])
                              for a, b in zip(got.clouds, ref.clouds, strict=True))}

    for threads in (1, 4):
        device = DeviceOutputs('cuda', staging_threads=threads)
        report[f'host_staging_copy_ms_{threads}_threads'] = median_ms(
            lambda device=device: device.stage(images))
    def whole_set():      # what the node runs per set on CUDA, besides the network
        dev = fast.upload(images)
        preprocess_torch_fast(dev)
        return fast.download(pred, dev, CLOUD, True, np.tile(np.eye(4), (S, 1, 1)))
    report['node_set_incl_staging_ms'] = median_ms(whole_set)
    dev = torch.empty((S, 900, 1600, 3), dtype=torch.uint8, device='cuda')
    report['pageable_upload_ms'] = median_ms(
        lambda: [dev[i].copy_(torch.from_numpy(img)) for i, img in enumerate(images)])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'node_gpu_path.json').write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
