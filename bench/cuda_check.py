"""The Predictor's torch backend on a CUDA GPU, checked against the CPU path and the official code.

    python bench/cuda_check.py --data /work/shared/data/nuscenes_mini_6cam_sample --out out/

Run by hand on a GPU machine (CI has none). DA3-SMALL with seeded random weights, the nuScenes
6-camera rig at process_res 504 (6 x 280 x 504). Reports, as JSON and printed lines:
  - CUDA fp32 vs CPU fp32 (same Predictor, cuDNN/cuBLAS TF32 off): max relative errors;
  - CUDA fp32 vs the official `DepthAnything3.inference` (fp32 forward) on CUDA, uncalibrated
    and with the rig's calibration (camera conditioning + Umeyama alignment);
  - CUDA bf16 (our autocast) vs the official bf16 forward, both against fp32;
  - GPU-resident preprocessing (torch ops on CUDA) vs the exact cv2 path: uint8 units and
    depth/pose errors;
  - informative timings (median of 20 after 5 warm-ups, CUDA-synchronised wall clock) of one
    predict() call; the formal benchmark is bench/gpu_vs_official.py.
The official package and test helpers come from test/ (official_nets, official_api).
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
sys.path[:0] = [str(ROOT), str(ROOT / 'test'), str(ROOT / 'test' / 'engine')]

from da3_ros.engine.predictor import Predictor  # noqa: E402
from da3_ros.engine.preprocess import preprocess, preprocess_torch  # noqa: E402
from da3_ros.engine.torch_backend import TorchBackend  # noqa: E402


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def errors(got, want_depth, want_conf, want_ext) -> dict[str, float]:
    return {'depth': rel(got.depth, want_depth), 'conf': rel(got.confidence, want_conf),
            'extrinsics': rel(got.T_cam_world[:, :3], want_ext)}


def load_rig(folder: Path):
    cal = json.loads((folder / 'calibration.json').read_text())['cameras'].values()
    images = [np.asarray(Image.open(folder / c['file']).convert('RGB')) for c in cal]
    K = np.stack([np.asarray(c['cam2img'], np.float64)[:3, :3] for c in cal])
    T = np.stack([np.linalg.inv(np.asarray(c['cam2ego'], np.float64)) for c in cal])
    return images, K, T


def timed(fn, warmup=5, runs=20) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, required=True, help='nuScenes sample folder')
    parser.add_argument('--out', type=Path, required=True, help='folder for cuda_check.json')
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit('cuda_check: no CUDA device')
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    from official_api import official_api
    from official_nets import build_pair
    from random_weights import randomize_

    report = {'gpu': torch.cuda.get_device_name(), 'torch': torch.__version__}
    images, K, T = load_rig(args.data)
    official_net, net = build_pair('da3-small')
    randomize_(official_net, seed=0)
    net.load_state_dict(official_net.state_dict(), strict=True)
    api = official_api(official_net.cuda(), 'da3-small')

    cpu = Predictor(TorchBackend(net.float(), 'cpu')).predict(images)
    cuda_backend = TorchBackend(net, 'cuda')
    cuda = Predictor(cuda_backend)
    got = cuda.predict(images)
    report['cuda_fp32_vs_cpu_fp32'] = errors(got, cpu.depth, cpu.confidence,
                                             cpu.T_cam_world[:, :3])

    torch.manual_seed(0)
    want = api.inference(images)
    report['cuda_fp32_vs_official_fp32'] = errors(got, want.depth, want.conf, want.extrinsics)
    got_rig = cuda.predict(images, K, T)
    want_rig = api.inference(images, extrinsics=T.astype(np.float32),
                             intrinsics=K.astype(np.float32))
    report['cuda_fp32_rig_vs_official_fp32'] = errors(got_rig, want_rig.depth, want_rig.conf,
                                                      want_rig.extrinsics)

    bf16 = Predictor(TorchBackend(net, 'cuda', 'bf16'))
    got_bf16 = bf16.predict(images)
    del api.forward        # back to the official forward: bf16 autocast on CUDA
    want_bf16 = api.inference(images)
    report['cuda_bf16_vs_official_bf16'] = errors(got_bf16, want_bf16.depth, want_bf16.conf,
                                                  want_bf16.extrinsics)
    report['cuda_bf16_vs_cuda_fp32'] = errors(got_bf16, got.depth, got.confidence,
                                              got.T_cam_world[:, :3])
    report['official_bf16_vs_official_fp32'] = {
        'depth': rel(want_bf16.depth, want.depth), 'conf': rel(want_bf16.conf, want.conf),
        'extrinsics': rel(want_bf16.extrinsics, want.extrinsics)}

    exact = preprocess(images).images
    stack = torch.stack([torch.from_numpy(i) for i in images]).cuda()
    fast = preprocess_torch(stack).cpu()
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    u8 = ((fast - exact).abs() * std * 255)
    report['preprocess_torch_cuda_uint8_units'] = {'max': float(u8.max()),
                                                   'mean': float(u8.mean())}
    gpu_pre = Predictor(cuda_backend, gpu_preprocess=True).predict(images)
    report['gpu_preprocess_vs_exact_cuda_fp32'] = errors(gpu_pre, got.depth, got.confidence,
                                                         got.T_cam_world[:, :3])

    report['ms_predict_6x280x504'] = {
        'ours_fp32': timed(lambda: cuda.predict(images)),
        'ours_bf16': timed(lambda: bf16.predict(images)),
        'ours_bf16_gpu_preprocess': timed(
            lambda: Predictor(TorchBackend(net, 'cuda', 'bf16'), gpu_preprocess=True
                              ).predict(images)),
        'official_bf16_inference': timed(lambda: api.inference(images)),
    }
    report['peak_memory_mib'] = torch.cuda.max_memory_allocated() / 2**20
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'cuda_check.json').write_text(json.dumps(report, indent=1))
    for key, value in report.items():
        print(f'{key}: {value}')


if __name__ == '__main__':
    main()
