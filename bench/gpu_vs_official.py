"""The official DA3 network and ours on one GPU: time, peak memory, FLOPs, output agreement.

    python bench/gpu_vs_official.py --out out/ [--configs da3-small:1x280x504 ...] [--runs 20]

Run by hand on a GPU machine (CI has none); results go to <out>/gpu_vs_official.json and are
printed. Per configuration (model, views, H, W), with the same seeded random weights on both:
  official       DepthAnything3Net under the official API's precision: inference_mode +
                 bf16 autocast (the camera decoder and heads run fp32 inside), eager
  ours_eager     da3_ros DA3Net, the same precision policy, eager
  ours_compiled  the same function through torch.compile(mode='reduce-overhead'): Inductor
                 kernels replayed as CUDA graphs (no per-op launch cost)
  ours_fast      bf16 autocast reaching the heads and camera decoder too (DA3Net.fast_heads),
                 compiled the same way: faster, agreement reported against fp32
  ours_fast_autotune  the same with mode='max-autotune' (GEMM autotuning; long first call)
Times: CUDA events around one forward, median of --runs after warm-up; peak memory:
torch.cuda.max_memory_allocated over warm-up + timed runs, weights included, one model on the
GPU at a time. FLOPs: torch.utils.flop_counter on one forward (matmul, conv, attention);
fraction of peak against an 8192^3 bf16 matmul measured in the same run. Agreement: max
|x - official| / max |official| of depth, confidence and extrinsics, against the official at
bf16 and at fp32, with the reference view forced to 'first' on both sides (the default
'saddle_balanced' choice can flip between near-equal random-weight views under bf16 noise).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'test')]

DEFAULT_CONFIGS = ('da3-small:1x280x504', 'da3-small:6x280x504', 'da3-large:1x280x504',
                   'da3-large:6x280x504', 'da3-large:8x504x504', 'da3-large:32x504x504')
BF16 = torch.bfloat16
# name -> (DA3Net.fast_heads, torch.compile mode or None for eager)
VARIANTS = {'ours_eager': (False, None), 'ours_compiled': (False, 'reduce-overhead'),
            'ours_fast': (True, 'reduce-overhead'), 'ours_fast_autotune': (True, 'max-autotune')}


def parse_config(text: str) -> tuple[str, int, int, int]:
    model, shape = text.split(':')
    views, h, w = (int(v) for v in shape.split('x'))
    return model, views, h, w


def cuda_time_ms(fn, warmup: int, runs: int) -> float:
    """Median milliseconds of fn() between CUDA events, after warm-up."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return statistics.median(samples)


def measure(fn, warmup: int, runs: int) -> dict:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    ms = cuda_time_ms(fn, warmup, runs)
    return {'ms': ms, 'peak_mib': torch.cuda.max_memory_allocated() / 2**20}


def bf16_peak_tflops() -> float:
    a = torch.randn(8192, 8192, device='cuda', dtype=BF16)
    b = torch.randn(8192, 8192, device='cuda', dtype=BF16)
    ms = cuda_time_ms(lambda: a @ b, 3, 10)
    return 2 * 8192 ** 3 / (ms * 1e-3) / 1e12


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def top_kernels(fn, n: int = 15) -> list[dict]:
    """The n CUDA kernels with the most total time over 5 calls (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
    events = sorted(prof.key_averages(), key=lambda e: -e.device_time_total)[:n]
    return [{'name': e.key[:120], 'calls': e.count, 'ms_per_forward': e.device_time_total / 5e3}
            for e in events]


def outputs(out) -> dict[str, torch.Tensor]:
    get = out.get if isinstance(out, dict) else (lambda k: getattr(out, k))
    return {k: get(k).detach().float().cpu().clone() for k in ('depth', 'depth_conf',
                                                               'extrinsics')}


def rel(a: dict, b: dict) -> dict[str, float]:
    return {k: float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12))
            for k in b}


def run_config(model: str, views: int, h: int, w: int, nets, args) -> dict:
    official, ours = nets
    x = torch.randn(1, views, 3, h, w, generator=torch.Generator().manual_seed(views)).cuda()
    result = {'model': model, 'views': views, 'hw': [h, w]}

    def official_fwd(strategy='saddle_balanced', autocast=True):
        with torch.inference_mode(), torch.autocast('cuda', dtype=BF16, enabled=autocast):
            return official(x, None, None, [], False, False, strategy)

    official.cuda()
    result['official'] = measure(official_fwd, args.warmup, args.runs)
    ref_bf16 = outputs(official_fwd('first'))
    ref_fp32 = outputs(official_fwd('first', autocast=False))
    official.cpu()
    torch.cuda.empty_cache()

    result['official_bf16_vs_fp32'] = rel(ref_bf16, ref_fp32)
    for name in args.variants:
        fast_heads, mode = VARIANTS[name]
        ours.fast_heads = fast_heads
        ours.cuda()
        net = ours if mode is None else torch.compile(ours, mode=mode, dynamic=False)

        def forward(strategy='saddle_balanced', net=net):
            with torch.inference_mode(), torch.autocast('cuda', dtype=BF16):
                return net(x, ref_view_strategy=strategy)

        start = time.perf_counter()
        forward()
        torch.cuda.synchronize()
        first_call_s = time.perf_counter() - start
        result[name] = measure(forward, args.warmup, args.runs)
        first = outputs(forward('first'))
        result[name].update(first_call_s=first_call_s, vs_official_bf16=rel(first, ref_bf16),
                            vs_official_fp32=rel(first, ref_fp32))
        if args.profile and name == args.variants[-1]:
            result[name]['top_kernels'] = top_kernels(forward)
        if 'flops' not in result:
            with torch.inference_mode():
                result['flops'] = count_flops(lambda: ours(x))
        ours.fast_heads = False
        ours.cpu()
        del net, forward
        torch.cuda.empty_cache()

    best = min(result[k]['ms'] for k in VARIANTS if k in result)
    result['speedup_best'] = result['official']['ms'] / best
    result['tflops_best'] = result['flops'] / (best * 1e-3) / 1e12
    return result


def build_nets(model: str):
    from official_nets import build_pair
    from random_weights import randomize_
    official, ours = build_pair(model)
    randomize_(official, seed=0)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official.eval(), ours.eval().requires_grad_(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS),
                        help='model:SxHxW, e.g. da3-large:6x280x504')
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--profile', action='store_true',
                        help='record the top CUDA kernels of the last variant')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--variants', nargs='+', default=['ours_eager', 'ours_compiled',
                                                          'ours_fast'], choices=list(VARIANTS))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit('gpu_vs_official: no CUDA device')
    import torch._dynamo as dynamo
    dynamo.config.cache_size_limit = 64
    dynamo.config.automatic_dynamic_shapes = False
    report = {'gpu': torch.cuda.get_device_name(), 'torch': torch.__version__,
              'bf16_peak_tflops': bf16_peak_tflops(), 'runs': args.runs,
              'warmup': args.warmup, 'configs': []}
    print(f"{report['gpu']}, torch {report['torch']}, bf16 matmul "
          f"{report['bf16_peak_tflops']:.0f} TFLOP/s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    nets, built = None, None
    for text in args.configs:
        model, views, h, w = parse_config(text)
        if built != model:
            nets, built = build_nets(model), model
        try:
            result = run_config(model, views, h, w, nets, args)
        except Exception as err:     # keep the other configurations' numbers
            import traceback
            traceback.print_exc()
            report['configs'].append({'config': text, 'error': repr(err)})
            nets[0].cpu(), nets[1].cpu()
            nets[1].fast_heads = False
            torch.cuda.empty_cache()
            (args.out / 'gpu_vs_official.json').write_text(json.dumps(report, indent=1))
            continue
        result['fraction_of_peak'] = result['tflops_best'] / report['bf16_peak_tflops']
        report['configs'].append(result)
        line = ', '.join(f"{k} {result[k]['ms']:.2f} ms / {result[k]['peak_mib']:.0f} MiB"
                         for k in ('official', *VARIANTS) if k in result)
        print(f'{text}: {line}; x{result["speedup_best"]:.1f}; '
              f'{result["flops"] / 1e12:.2f} TFLOP, {result["fraction_of_peak"]:.1%} of peak; '
              'first call ' + ', '.join(f'{k} {result[k]["first_call_s"]:.0f} s'
                                        for k in VARIANTS if k in result), flush=True)
        (args.out / 'gpu_vs_official.json').write_text(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
