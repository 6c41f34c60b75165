"""DA3 networks through torch.compile with the settings measured fastest on an H100.

    run = compile_network(net, FAST)         # net: DA3Net on a CUDA device, eval, no grad
    with torch.inference_mode(), torch.autocast('cuda', dtype=torch.bfloat16):
        out = run(images)                    # same arguments and DA3Output as net(...)

FAST is the setting the package ships (TorchBackend(compile=True)); its measured effect is in
docs/benchmarks.md section 1. Nothing here changes what the network computes; the kernels and
memory layouts that compute it change.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._pytree import tree_leaves, tree_map

from da3_ros.errors import ConfigError

MODES = ('eager', 'default', 'reduce-overhead', 'captured', 'max-autotune',
         'max-autotune-no-cudagraphs')
SDPA_BACKENDS = ('cudnn', 'flash', 'efficient', 'math')


@dataclass(frozen=True)
class CompileConfig:
    """How to compile.

    mode: torch.compile mode; 'reduce-overhead' replays the Inductor kernels as CUDA graphs
        (PyTorch's CUDA-graph trees); 'captured' compiles without them and replays each call
        signature as one CUDA graph captured here (CapturedCalls: less host work per call);
        'eager' applies the other settings and does not compile
    fast_heads: bf16 autocast reaches the heads and the camera decoder (DA3Net.fast_heads);
        False keeps them in float32 as the official does
    freezing: Inductor freezing: weights become constants, so weight-only work (pos-embed
        resize, layout conversion of conv weights) is folded at compile time
    channels_last_heads: dense-head weights in channels_last, so the head's convolutions run
        NHWC (the layout cuDNN's tensor-core kernels use)
    sdpa: attention backends in priority order, or () for PyTorch's default order
    cudnn_benchmark: torch.backends.cudnn.benchmark during compilation and warm-up
    bf16_weights: store the weights of the linear and convolution layers that run under bf16
        autocast in bf16 once, instead of autocast casting them on every call (the same
        rounding, so the same function; 0.8 ms of a DA3-LARGE 6 x 280 x 504 call on an H100)
    inductor: extra torch._inductor.config options as (name, value) pairs
    """

    mode: str = 'reduce-overhead'
    fast_heads: bool = True
    freezing: bool = False
    channels_last_heads: bool = False
    sdpa: tuple[str, ...] = ()
    cudnn_benchmark: bool = False
    bf16_weights: bool = False
    inductor: tuple[tuple[str, object], ...] = ()

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f'compile mode must be one of {MODES}, got {self.mode!r}')
        unknown = [b for b in self.sdpa if b not in SDPA_BACKENDS]
        if unknown:
            raise ConfigError(f'unknown SDPA backends {unknown}; known: {SDPA_BACKENDS}')


# The shipped setting: each call signature replayed as one captured CUDA graph, weights stored
# in bf16 once, cuDNN autotuning on (the tried alternatives: bench/compile_variants.py)
FAST = CompileConfig(mode='captured', bf16_weights=True, cudnn_benchmark=True)
_CASTS_UNDER_AUTOCAST = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def cast_autocast_weights(net: nn.Module, dtype=torch.bfloat16) -> None:
    """Store in `dtype` the weights and biases of the layers that autocast would cast to it
    on every call: linear and convolution layers of the backbone, and of the heads and the
    camera decoder when net.fast_heads (else those run float32, as the official). The camera
    encoder always runs float32 and keeps its weights. A NestedDA3Net: both networks.
    Afterwards the network must run under autocast to `dtype`."""
    if hasattr(net, 'da3_metric'):
        for part in (net.da3, net.da3_metric):
            cast_autocast_weights(part, dtype)
        return
    parts = [net.backbone]
    if net.fast_heads:
        parts += [getattr(net, n) for n in ('head', 'cam_dec', 'gs_head') if hasattr(net, n)]
    for part in parts:
        for module in part.modules():
            if isinstance(module, _CASTS_UNDER_AUTOCAST):
                module.to(dtype)


def _sdpa_context(backends: tuple[str, ...]):
    from contextlib import nullcontext

    from torch.nn.attention import SDPBackend, sdpa_kernel
    if not backends:
        return nullcontext()
    names = {'cudnn': SDPBackend.CUDNN_ATTENTION, 'flash': SDPBackend.FLASH_ATTENTION,
             'efficient': SDPBackend.EFFICIENT_ATTENTION, 'math': SDPBackend.MATH}
    return sdpa_kernel([names[b] for b in backends], set_priority=True)


def compile_network(net: nn.Module, cfg: CompileConfig = FAST):
    """A callable with net's forward signature that runs the compiled network.

    net: DA3Net (weights loaded, on its device, eval); its fast_heads flag and, with
        channels_last_heads / bf16_weights, its weights' layout / storage are set here
        (call it under bf16 autocast, as the official API runs)
    The first call compiles (tens of seconds for DA3-LARGE); later calls with other input
    shapes or options compile again.
    """
    if cfg.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    net.fast_heads = cfg.fast_heads
    if cfg.bf16_weights:
        cast_autocast_weights(net)
    if cfg.channels_last_heads:
        for name in ('head', 'gs_head'):
            if hasattr(net, name):
                getattr(net, name).to(memory_format=torch.channels_last)
    if cfg.mode == 'eager':
        compiled = net
    else:
        compiled = torch.compile(net, options=_inductor_options(cfg), dynamic=False)
    if cfg.mode == 'captured':
        compiled = CapturedCalls(compiled)

    def run(*args, **kwargs):
        with _sdpa_context(cfg.sdpa):
            return compiled(*args, **kwargs)

    return run


class CapturedCalls:
    """fn replayed as one CUDA graph per call signature (tensor shapes, dtypes and devices,
    the other arguments' values, autocast and inference-mode state).

    The first call of a signature captures fn on copies of its arguments (capture_graph);
    later calls copy their tensors into those and replay. Outputs are cloned out of the
    graph's memory, so they stay valid after the next call. fn must be capturable: no host
    synchronisation, the same work for every input of a signature. If capturing fails but
    fn itself runs (e.g. a data-dependent host step), fn runs uncaptured from then on
    (logged once); errors of fn itself propagate. On the host a replay costs a few copies
    and one launch, where PyTorch's CUDA-graph trees check and record their state per call.
    """

    def __init__(self, fn):
        self.fn = fn
        self.graphs: dict = {}
        self.failed = False

    def __call__(self, *args, **kwargs):
        if self.failed:
            return self.fn(*args, **kwargs)
        kwargs = dict(sorted(kwargs.items()))      # one leaf order per signature
        key = _signature(args, kwargs)
        graph = self.graphs.get(key)
        if graph is None:
            try:
                graph = self.graphs[key] = _CapturedCall(self.fn, args, kwargs)
            except Exception as err:  # not capturable, if fn itself runs
                out = self.fn(*args, **kwargs)
                self.failed = True
                logging.getLogger(__name__).warning(
                    'CUDA graph capture of the network failed (%s: %s); running it without',
                    type(err).__name__, err)
                return out
        return graph.replay(args, kwargs)


def _signature(args: tuple, kwargs: dict) -> tuple:
    def one(v):
        return ('tensor', v.shape, v.dtype, v.device) if isinstance(v, torch.Tensor) else v
    autocast = (torch.is_autocast_enabled('cuda'), torch.get_autocast_dtype('cuda'))
    return (tuple(one(a) for a in args), tuple((k, one(v)) for k, v in kwargs.items()),
            autocast, torch.is_inference_mode_enabled())


def capture_graph(fn, *args, **kwargs) -> tuple[torch.cuda.CUDAGraph, object]:
    """(graph, outputs): fn(*args, **kwargs) captured as one CUDA graph whose replays rerun it
    on the same argument tensors and rewrite the same output tensors.

    fn runs twice first on a side stream: once to compile and warm up (host synchronisations
    allowed), once with host synchronisations made errors. A synchronisation would break the
    capture, and a broken capture leaves the CUDA generator marked as capturing, so that
    later random ops fail; raised here, it leaves nothing behind.
    """
    dev = next(t for t in _tensors((args, kwargs))).device
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        fn(*args, **kwargs)
        mode = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode('error')
        try:
            fn(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode(mode)
    torch.cuda.current_stream(dev).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode='thread_local'):
        outputs = fn(*args, **kwargs)
    return graph, outputs


class _CapturedCall:
    """One captured call: static copies of the tensor arguments and the graph's outputs."""

    def __init__(self, fn, args: tuple, kwargs: dict):
        self.static = tree_map(_clone, (args, kwargs))
        self.static_tensors = _tensors(self.static)
        self.graph, self.outputs = capture_graph(fn, *self.static[0], **self.static[1])

    def replay(self, args: tuple, kwargs: dict):
        for static, new in zip(self.static_tensors, _tensors((args, kwargs)), strict=True):
            if static.data_ptr() != new.data_ptr():
                static.copy_(new, non_blocking=True)
        self.graph.replay()
        return tree_map(_clone, self.outputs)


def _clone(v):
    return v.clone() if isinstance(v, torch.Tensor) else v


def _tensors(tree) -> list:
    return [v for v in tree_leaves(tree) if isinstance(v, torch.Tensor)]


def _inductor_options(cfg: CompileConfig) -> dict:
    options = {'triton.cudagraphs': cfg.mode == 'reduce-overhead',
               'max_autotune': cfg.mode.startswith('max-autotune'),
               'freezing': cfg.freezing, **dict(cfg.inductor)}
    if cfg.mode == 'max-autotune':
        options['triton.cudagraphs'] = True
    return options


class compile_or_eager:  # noqa: N801 - used like a decorator function
    """fn through torch.compile (dynamic=False) when its first argument is a CUDA tensor, else
    eager. If a compiled call raises but the eager call succeeds, compiling is given up for
    good (logged once), so a GPU without a working Triton still runs; errors of the eager
    function itself propagate."""

    def __init__(self, fn):
        self.fn = fn
        self.compiled = None
        self.failed = False

    def __call__(self, x, *args):
        if x.device.type != 'cuda' or self.failed:
            return self.fn(x, *args)
        if self.compiled is None:
            self.compiled = torch.compile(self.fn, dynamic=False)
        try:
            return self.compiled(x, *args)
        except Exception as err:  # compile failure: fall back if the function itself works
            out = self.fn(x, *args)
            self.failed = True
            logging.getLogger(__name__).warning(
                'torch.compile of %s failed (%s: %s); running it eager', self.fn.__name__,
                type(err).__name__, err)
            return out
