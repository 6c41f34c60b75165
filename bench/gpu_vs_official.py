"""The official DA3 network and ours on one GPU: time, peak memory, FLOPs, output agreement.

    python bench/gpu_vs_official.py --out out/ [--configs da3-small:1x280x504 ...] [--runs 20]

Run by hand on a GPU machine (CI has none); results go to <out>/gpu_vs_official.json and are
printed. Per configuration (model, views, H, W), with the same seeded random weights on both:
  official       DepthAnything3Net under the official API's precision: inference_mode +
                 bf16 autocast (the camera decoder and heads run fp32 inside), eager
  official_compiled_<mode>  (--official-compile MODE ...) the same network and precision
                 policy through torch.compile(mode=MODE) ('default', 'reduce-overhead'), as
                 a user who cares about speed would run the official code; first-call
                 (compile) time, peak memory and agreement with the official fp32 recorded
  ours_eager     da3_ros DA3Net, the same precision policy, eager, with the backbone weights
                 stored in bf16 once as TorchBackend(precision='bf16') does (autocast's own
                 rounding of them, without a cast per call)
  ours_compiled  the same function through da3_ros.engine.compiled (torch.compile,
                 mode='reduce-overhead': Inductor kernels replayed as CUDA graphs), heads
                 fp32, backbone weights stored bf16 once (autocast's own rounding)
  ours_fast_v1   bf16 autocast reaching the heads and camera decoder too (fast_heads),
                 compiled as above but without bf16 weights (the 2026-11-24 settings)
  ours_fast      compiled.FAST: ours_fast_v1 plus bf16 weights and cudnn.benchmark,
                 replayed as one CUDA graph per call signature (compiled.CapturedCalls)
  ours_fast_*    single settings on top of ours_fast_v1 (freeze, cl, cudnn_sdpa, bench),
                 tried once on DA3-LARGE 6x280x504; FAST keeps what helped; ours_fast_cdt:
                 FAST with Inductor's coordinate-descent tuning of its own kernels;
                 ours_fast_combo: FAST with Inductor's combo kernels (independent small
                 kernels launched as one); ours_fast_mm: FAST with GEMMs autotuned against
                 Triton templates that take their pointwise epilogues (GELU, LayerScale);
                 ours_fast_trees: FAST with PyTorch's CUDA-graph trees instead of
                 compiled.CapturedCalls (FAST until 2026-11-25)
The variants are defined in bench/compile_variants.py.
Times: CUDA events around one forward, median of --runs after warm-up; peak memory:
torch.cuda.max_memory_allocated over warm-up + timed runs, weights included, one model on the
GPU at a time. FLOPs: torch.utils.flop_counter on one forward (matmul, conv, attention);
fraction of peak against an 8192^3 bf16 matmul measured in the same run (ours' FLOPs: ours
skips the ray branch nobody asked for, so it counts fewer than the official). Agreement:
max |x - official| / max |official| of depth, confidence and extrinsics, against the official
at bf16 and at fp32, on a second input with visibly different views (on the timed white-noise
input the default 'saddle_balanced' reference choice ties between near-equal views and can
flip under bf16 noise), with the default strategy where both sides picked one view, else
'first' on both sides (recorded per variant).
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
sys.path[:0] = [str(ROOT), str(ROOT / 'test'), str(ROOT / 'bench')]

from compile_variants import VARIANTS  # noqa: E402

from da3_ros.engine import compiled  # noqa: E402

DEFAULT_CONFIGS = ('da3-small:1x280x504', 'da3-small:6x280x504', 'da3-large:1x280x504',
                   'da3-large:6x280x504', 'da3-large:8x504x504', 'da3-large:32x504x504')
BF16 = torch.bfloat16


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


KERNEL_KINDS = (('attention', ('flash', 'fmha', 'attention', 'sdpa', 'cudnn_generated')),
                ('conv', ('conv', 'fprop', 'dgrad', 'implicit', 'winograd', 'nhwc', 'nchw')),
                ('gemm', ('gemm', 'xmma', 'cutlass', 'sm90_', 'wgmma', 'matmul', 'mm_')),
                ('triton', ('triton',)), ('copy', ('memcpy', 'memset', 'copy', 'elementwise')))


def kernel_kind(name: str) -> str:
    low = name.lower()
    for kind, keys in KERNEL_KINDS:
        if any(k in low for k in keys):
            return kind
    return 'other'


def top_kernels(fn, n: int = 25) -> dict:
    """GPU kernel time per forward by kernel kind, and the n kernels with the most time
    (5 calls, torch.profiler; kernels inside CUDA graphs included)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
    kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
    kinds: dict[str, float] = {}
    for e in kernels:
        kind = kernel_kind(e.key)
        kinds[kind] = kinds.get(kind, 0.0) + e.device_time_total / 5e3
    top = sorted(kernels, key=lambda e: -e.device_time_total)[:n]
    return {'ms_per_forward_by_kind': kinds,
            'ms_per_forward_all_kernels': sum(kinds.values()),
            'top': [{'name': e.key[:140], 'calls': e.count / 5,
                     'ms_per_forward': e.device_time_total / 5e3} for e in top]}


def probe(report: dict) -> None:
    """Kernel-level facts for the LARGE 6x280x504 shapes: attention backends on the global
    (1, 16, 4326, 64) and local (6, 16, 721, 64) shapes; a 3x3 256->256 convolution on
    (6, 256, 80, 144) NCHW vs NHWC, cudnn.benchmark off and on. bf16, ms (median)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    out = {}
    for label, shape in (('global', (1, 16, 4326, 64)), ('local', (6, 16, 721, 64))):
        q, k, v = (torch.randn(shape, device='cuda', dtype=BF16) for _ in range(3))
        flops = 4 * shape[0] * shape[1] * shape[2] ** 2 * shape[3]
        for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION,
                        SDPBackend.EFFICIENT_ATTENTION):
            try:
                with sdpa_kernel([backend]):
                    ms = cuda_time_ms(lambda q=q, k=k, v=v: torch.nn.functional.
                                      scaled_dot_product_attention(q, k, v), 5, 20)
                out[f'sdpa_{label}_{backend.name}'] = {'ms': ms, 'tflops': flops / ms / 1e9}
            except Exception as err:
                out[f'sdpa_{label}_{backend.name}'] = repr(err)[:200]
    conv = torch.nn.Conv2d(256, 256, 3, 1, 1).cuda().to(BF16)
    x = torch.randn(6, 256, 80, 144, device='cuda', dtype=BF16)
    flops = 2 * 9 * 256 * 256 * 6 * 80 * 144
    for bench in (False, True):
        torch.backends.cudnn.benchmark = bench
        for layout in ('nchw', 'nhwc'):
            fmt = torch.channels_last if layout == 'nhwc' else torch.contiguous_format
            c, xi = conv.to(memory_format=fmt), x.contiguous(memory_format=fmt)
            with torch.inference_mode():
                ms = cuda_time_ms(lambda c=c, xi=xi: c(xi), 5, 20)
            out[f'conv3x3_{layout}_benchmark_{bench}'] = {'ms': ms, 'tflops': flops / ms / 1e9}
    torch.backends.cudnn.benchmark = False
    report['probe'] = out
    print(json.dumps(out, indent=1), flush=True)


def outputs(out) -> dict[str, torch.Tensor]:
    get = out.get if isinstance(out, dict) else (lambda k: getattr(out, k))
    return {k: get(k).detach().float().cpu().clone() for k in ('depth', 'depth_conf',
                                                               'extrinsics')}


def rel(a: dict, b: dict) -> dict[str, float]:
    return {k: float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12))
            for k in b}


def distinct_views(views: int, h: int, w: int) -> torch.Tensor:
    """(1, S, 3, H, W): views with different low-frequency content plus noise, so that the
    reference-view choice is clear-cut (on white noise all views tie)."""
    g = torch.Generator().manual_seed(100 + views)
    coarse = 2 * torch.randn(views, 3, 3, 4, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode='bilinear')
    return (smooth + 0.3 * torch.randn(views, 3, h, w, generator=g))[None]


def run_config(model: str, views: int, h: int, w: int, nets, args) -> dict:
    official, ours = nets
    x = torch.randn(1, views, 3, h, w, generator=torch.Generator().manual_seed(views)).cuda()
    x_cmp = distinct_views(views, h, w).cuda()
    result = {'model': model, 'views': views, 'hw': [h, w]}

    def official_fwd(strategy='saddle_balanced', autocast=True, x=x):
        with torch.inference_mode(), torch.autocast('cuda', dtype=BF16, enabled=autocast):
            return official(x, None, None, [], False, False, strategy)

    official.cuda()
    result['official'] = measure(official_fwd, args.warmup, args.runs)
    if args.profile:    # GPU busy time: how much of the official's wall clock is host-bound
        result['official']['kernels'] = top_kernels(official_fwd)
    refs = {strategy: (outputs(official_fwd(strategy, x=x_cmp)),
                       outputs(official_fwd(strategy, autocast=False, x=x_cmp)))
            for strategy in ('saddle_balanced', 'first')}
    for mode in args.official_compile:
        try:
            result[f'official_compiled_{mode}'] = run_official_compiled(
                official, mode, (x, x_cmp), refs['saddle_balanced'][1], args)
        except Exception as err:     # a mode that does not compile: say so, keep the rest
            result[f'official_compiled_{mode}'] = {'error': repr(err)[:500]}
        torch._dynamo.reset()
        torch.cuda.empty_cache()
    with torch.inference_mode():
        result['flops_official'] = count_flops(lambda: official(x))
    official.cpu()
    torch.cuda.empty_cache()

    result['official_bf16_vs_fp32'] = rel(*refs['saddle_balanced'])
    for name in args.variants:
        try:
            result[name] = run_variant(name, ours, (x, x_cmp), refs, args)
        except Exception as err:     # keep the other variants' numbers
            import traceback
            traceback.print_exc()
            result[name] = {'error': repr(err)[:500]}
        finally:
            ours.fast_heads = False       # weights, layouts and dtypes back to the official's
            ours.cpu().float().to(memory_format=torch.contiguous_format)
            ours.load_state_dict(official.state_dict(), strict=True)
            torch.backends.cudnn.benchmark = False
            torch._dynamo.reset()
            torch.cuda.empty_cache()
        (args.out / 'partial.json').write_text(json.dumps(result, indent=1))
        if 'flops' not in result:
            ours.cuda()
            with torch.inference_mode():
                result['flops'] = count_flops(lambda: ours(x))
            ours.cpu()
            torch.cuda.empty_cache()

    best = min(result[k]['ms'] for k in VARIANTS if 'ms' in result.get(k, {}))
    result['speedup_best'] = result['official']['ms'] / best
    compiled_official = [result[k]['ms'] for k in result
                         if k.startswith('official_compiled_') and 'ms' in result[k]]
    if compiled_official:   # against the strongest baseline: the fastest compiled official
        result['speedup_best_vs_official_compiled'] = min(compiled_official) / best
    result['tflops_best'] = result['flops'] / (best * 1e-3) / 1e12
    return result


def run_official_compiled(official, mode: str, inputs, ref_fp32: dict, args) -> dict:
    """The official network through torch.compile(mode) under its own precision policy
    (inference_mode + bf16 autocast): median ms, peak MiB, first-call seconds (compiling
    included) and agreement with the eager official at fp32 on the distinct-view input."""
    x, x_cmp = inputs
    net = torch.compile(official, mode=None if mode == 'default' else mode)

    def forward(x=x):
        with torch.inference_mode(), torch.autocast('cuda', dtype=BF16):
            return net(x, None, None, [], False, False, 'saddle_balanced')

    start = time.perf_counter()
    forward()
    torch.cuda.synchronize()
    first_call_s = time.perf_counter() - start
    result = measure(forward, args.warmup, args.runs)
    result.update(first_call_s=first_call_s,
                  vs_official_fp32=rel(outputs(forward(x=x_cmp)), ref_fp32))
    return result


SAME_VIEW_CHOICE = 0.1    # below this vs the official, both sides chose one reference view


def run_variant(name: str, ours, inputs, refs: dict, args) -> dict:
    """Time one of our variants; outputs compared with the official's at bf16 and fp32.

    x times; x_cmp (distinct views) is compared, with the timed call's default reference-view
    strategy when ours and the official (bf16 and fp32) evidently picked one reference view
    (all errors < SAME_VIEW_CHOICE; a different pick changes the outputs by O(1)), otherwise
    with 'first' on both sides (a compiled variant compiles once more for that)."""
    x, x_cmp = inputs
    ours.cuda()
    net = compiled.compile_network(ours, VARIANTS[name])

    def forward(strategy='saddle_balanced', x=x):
        with torch.inference_mode(), torch.autocast('cuda', dtype=BF16):
            return net(x, ref_view_strategy=strategy)

    import torch._dynamo.utils as dynamo_utils
    dynamo_utils.counters.clear()
    start = time.perf_counter()
    forward()
    torch.cuda.synchronize()
    first_call_s = time.perf_counter() - start
    result = measure(forward, args.warmup, args.runs)
    strategy = 'saddle_balanced'
    mine = outputs(forward(x=x_cmp))
    if max(max(rel(mine, ref).values()) for ref in refs[strategy]) >= SAME_VIEW_CHOICE:
        strategy = 'first'
        mine = outputs(forward(strategy, x=x_cmp))
    ref_bf16, ref_fp32 = refs[strategy]
    result.update(first_call_s=first_call_s, vs_official_bf16=rel(mine, ref_bf16),
                  vs_official_fp32=rel(mine, ref_fp32), compared_with_strategy=strategy,
                  graph_breaks=sum(dynamo_utils.counters['graph_break'].values()),
                  graphs=dynamo_utils.counters['stats'].get('unique_graphs', 0))
    if args.profile:
        result['kernels'] = top_kernels(forward)
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
                        help='record GPU kernel time by kind and the top kernels per variant')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--variants', nargs='+', default=['ours_eager', 'ours_compiled',
                                                          'ours_fast'], choices=list(VARIANTS))
    parser.add_argument('--official-compile', nargs='*', default=[],
                        choices=('default', 'reduce-overhead'),
                        help='also time the official network under torch.compile(mode=...)')
    parser.add_argument('--probe', action='store_true',
                        help='first time attention backends and a head convolution alone')
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
    if args.probe:
        probe(report)
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
            torch.cuda.empty_cache()
            (args.out / 'gpu_vs_official.json').write_text(json.dumps(report, indent=1))
            continue
        result['fraction_of_peak'] = result['tflops_best'] / report['bf16_peak_tflops']
        report['configs'].append(result)
        names = ('official', *(f'official_compiled_{m}' for m in args.official_compile),
                 *VARIANTS)
        line = ', '.join(f"{k} {result[k]['ms']:.2f} ms / {result[k]['peak_mib']:.0f} MiB"
                         for k in names if 'ms' in result.get(k, {}))
        print(f'{text}: {line}; x{result["speedup_best"]:.1f}; '
              f'{result["flops"] / 1e12:.2f} TFLOP, {result["fraction_of_peak"]:.1%} of peak; '
              'first call ' + ', '.join(f'{k} {result[k]["first_call_s"]:.0f} s'
                                        for k in VARIANTS if 'ms' in result.get(k, {})),
              flush=True)
        (args.out / 'gpu_vs_official.json').write_text(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
