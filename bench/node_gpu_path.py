"""The depth node's GPU path without the network: uint8 images in, publishable arrays out.

    python bench/node_gpu_path.py --data <nuScenes sample folder> --out out/

Run by hand on a GPU machine. Six 1600x900 RGB images (the nuScenes sample) go through the
code the depth node runs around the network on CUDA (ros/depth/pipeline.py), with tensors on
the GPU from the uint8 upload to the device-to-host copies:
  upload    engine.device_outputs.DeviceOutputs.transfer: one non-blocking copy of the six
            images from the pinned staging buffer to the GPU (the host copy into that buffer,
            DeviceOutputs.stage, is host work of the node and is reported apart, with 1 and 4
            threads)
  pre       engine.preprocess.preprocess_torch_fast (torch.compile of preprocess_torch:
            the official resize policy to 280 x 504, ImageNet normalisation)
  outputs   DeviceOutputs.download: nearest-pixel colours, back-projection, filters,
            records (x y z rgb confidence) per camera and their compaction, then, for the
            fused cloud, the compaction of the same records in the fixed frame (replayed as
            two CUDA graphs); the copies to pinned host buffers run on a copy stream as soon
            as what they copy is ready (depth and confidence during the packing, the
            per-camera records during the fixed-frame compaction); one synchronisation
The network is replaced by tensors of its output shapes (random depth/confidence on the GPU):
the benchmark is the overhead beyond the network. Time: CUDA-synchronised wall clock per set,
median of 50 after 10 warm-ups; the split by CUDA events. Variants: with and without the
fused cloud, the serial order (DeviceOutputs(overlap=False): the copies on the current stream,
after the packing work before them, as the node ran before), without the CUDA graphs, all
eager (no torch.compile, no graph). Also: a pageable upload without staging, host staging
with 1 and 4 threads, the whole set including staging, the agreement of the compiled and
eager results, and whether the overlapped downloads (with and without the graphs) give the
serial bytes: depth, confidence, counts, each view's records and fixed-frame records, over
sets that alternate two predictions (one with dropped points) into poisoned pinned buffers,
so that a copy run before the work it needs would show.
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


def stand_in_prediction(S: int, views, seed: int = 0,
                        dropped: float = 0.0) -> TensorPrediction:
    """Network outputs of the right shapes on the GPU (a `dropped` fraction of the depth NaN,
    which the packing drops); cameras on the host as the Predictor."""
    gen = torch.Generator(device='cuda').manual_seed(seed)
    depth = torch.rand((S, 280, 504), device='cuda', generator=gen) * 30 + 0.5
    conf = torch.rand((S, 280, 504), device='cuda', generator=gen) * 5 + 1
    depth[torch.rand((S, 280, 504), device='cuda', generator=gen) < dropped] = float('nan')
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


def host_bytes(host) -> dict:
    """The published arrays' bytes (copied: the next download() rewrites pinned buffers)."""
    return {'depth': host.depth.tobytes(), 'confidence': host.confidence.tobytes(),
            'counts': [len(r) for r in host.clouds],
            'records': [r.tobytes() for r in host.clouds],
            'moved': [r.tobytes() for r in host.fixed_clouds]}


def overlapped_vs_serial(overlapped: DeviceOutputs, serial: DeviceOutputs, images, preds,
                         T_fixed: np.ndarray, sets: int = 20) -> dict:
    """Whether overlapped downloads give the serial bytes, per array, over `sets` downloads
    alternating two predictions; before each, the overlapped pinned buffers are filled with
    0xFF bytes, so that a copy that ran too early leaves the poison or the other set."""
    dev = serial.upload(images)
    want = [host_bytes(serial.download(p, dev, CLOUD, True, T_fixed)) for p in preds]
    equal = {name: True for name in want[0]}
    for i in range(sets):
        for name, buf in overlapped._pinned.items():
            if name not in ('upload', 'K', 'T'):
                buf.numpy().view(np.uint8).fill(255)
        got = host_bytes(overlapped.download(preds[i % 2], dev, CLOUD, True, T_fixed))
        for name in equal:
            equal[name] &= got[name] == want[i % 2][name]
    return {'sets': sets, 'points_per_set': [sum(w['counts']) for w in want],
            'all_equal': all(equal.values()), 'equal': equal}


def profile_set(device: DeviceOutputs, images, pred, S: int, sets: int = 5) -> list[dict]:
    """GPU time per set of each kernel and copy of the fused compiled path (torch.profiler;
    inside CUDA graphs too), most first."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    staged, T_fixed = device.stage(images), np.tile(np.eye(4), (S, 1, 1))
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(sets):
            dev = device.transfer(staged)
            preprocess_torch_fast(dev)
            device.download(pred, dev, CLOUD, True, T_fixed)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
    return [{'name': e.key[:120], 'calls': e.count / sets,
             'ms_per_set': e.device_time_total / sets / 1e3}
            for e in sorted(events, key=lambda e: -e.device_time_total)[:25]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, required=True)
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--profile', action='store_true',
                        help='also list the GPU kernels and copies of the fused compiled set')
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
    serial = DeviceOutputs('cuda', overlap=False)
    assert fast.overlap and no_graph.overlap and eager.overlap and not serial.overlap
    start = time.perf_counter()
    fast.download(pred, fast.upload(images), CLOUD, True, np.tile(np.eye(4), (S, 1, 1)))
    preprocess_torch_fast(fast.upload(images))
    torch.cuda.synchronize()
    report['first_call_compile_s'] = time.perf_counter() - start
    for name, device, pre, fused in (('compiled_fused', fast, preprocess_torch_fast, True),
                                     ('compiled_fused_serial', serial, preprocess_torch_fast,
                                      True),
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
    # compared now: got and ref are views of pinned buffers that later downloads rewrite
    report['compiled_vs_eager_records'] = {
        'counts_equal': [len(a) for a in got.clouds] == [len(b) for b in ref.clouds],
        'max_abs_xyz': max(float(np.abs(a[:, :3] - b[:, :3]).max())
                           for a, b in zip(got.clouds, ref.clouds, strict=True)),
        'rgb_conf_equal': all(np.array_equal(a[:, 3:], b[:, 3:])
                              for a, b in zip(got.clouds, ref.clouds, strict=True))}
    from da3_ros.engine.preprocess import _fast_core
    report['compile_fell_back'] = {'records': fast._records.failed,
                                   'preprocess': _fast_core().failed}
    report['cuda_graph_packing'] = fast.graphs
    T_check = np.tile(np.eye(4), (S, 1, 1))
    T_check[:, :2, :2] = [[0.6, -0.8], [0.8, 0.6]]
    T_check[:, :3, 3] = np.arange(3 * S).reshape(S, 3)
    preds = (pred, stand_in_prediction(S, views, seed=1, dropped=0.2))
    report['overlapped_vs_serial_bytes'] = {
        'graphs': overlapped_vs_serial(fast, serial, images, preds, T_check),
        'no_graph': overlapped_vs_serial(no_graph, serial, images, preds, T_check)}
    std_u8 = torch.tensor(IMAGENET_STD)[:, None, None] * 255
    diff_u8 = ((preprocess_torch_fast(fast.upload(images)).cpu() - preprocess(images).images)
               .abs() * std_u8)
    report['preprocess_fast_vs_cv2_uint8'] = {'max': float(diff_u8.max()),
                                              'mean': float(diff_u8.mean())}

    if args.profile:
        report['profile_compiled_fused'] = profile_set(fast, images, pred, S)
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
