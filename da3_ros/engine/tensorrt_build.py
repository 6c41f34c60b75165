"""Build TensorRT engines from da3_ros ONNX files, cached by what determines the engine.

    entry = cached_or_build('da3-small_280x504.onnx', 'engines/', 'fp16', ViewProfile(1, 2, 4))
    entry.engine_path   # engines/da3-small_280x504_fp16_<16 hex>.engine (+ .json sidecar)

One engine per ONNX file, hence per resolution: the position embeddings and RoPE tables are
constants for the file's (H, W), so "profiles over resolution" means one
ONNX export and one engine per (H, W). Inside an engine only the view axis S is dynamic; its
optimization profile is `ViewProfile` (min/opt/max views), applied to 'images' (1, S, 3, H, W)
and, for camera-conditioned files, 'pose_enc' (1, S, 9).

The cache key (`EngineKey`) is the sha256 of the ONNX bytes (and its external .data file),
the TensorRT version, the GPU identity (name, compute capability, SM count; on integrated GPUs
also memory and the board model, so Orin modules differ), the precision, the view profile and
the da3_ros version; any change gives another file name, so a stale engine is never loaded.
Writes are atomic (temporary file + os.replace) with the umask's permissions. The TensorRT
timing cache is kept next to the engines, one per TensorRT version, GPU and precision.

Before TensorRT is touched the ONNX graph passes `graph_lint` (standard ops only, no plugins).
Written against the TensorRT 10 Python API and refused by any other major version
(`check_tensorrt_version`). The standard plugin library is registered once
(`init_libnvinfer_plugins`) for builds and runtimes alike. 'fp16' uses the weakly-typed
BuilderFlag.FP16 (deprecated since 10.12, removed in 11); 'fp32' clears BuilderFlag.TF32 so
that fp32 means fp32. tensorrt is imported only when building or opening an engine. Ctrl-C
during a build cancels it at the builder's next step (KeyboardInterrupt, exit code 130).
"""
from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from da3_ros.engine.engine_cache import (
    EngineKey,
    OnnxInfo,
    ViewProfile,
    check_precision,
    engine_files,
    lookup,
    make_key,
    read_onnx_info,
    store,
    timing_cache_file,
)
from da3_ros.engine.graph_lint import check_file
from da3_ros.errors import CheckpointError, ConfigError
from da3_ros.files import write_atomic

log = logging.getLogger(__name__)

LOG_LEVELS = {'INTERNAL_ERROR': logging.CRITICAL, 'ERROR': logging.ERROR,
              'WARNING': logging.WARNING, 'INFO': logging.INFO, 'VERBOSE': logging.DEBUG}


REQUIRED_MAJOR = 10
INSTALL_HINT = ("desktop/server: pip install 'tensorrt-cu12>=10,<11' (CUDA 12 wheels); "
                "Jetson: JetPack 6.1 or later ships TensorRT 10.3 (apt: python3-libnvinfer; "
                "make a venv with --system-site-packages), not a pip wheel")


class TensorRTUnavailable(ConfigError):
    """The tensorrt Python package cannot be imported or is not TensorRT 10."""


def check_tensorrt_version(version: str) -> str:
    """The version if its major is 10, else TensorRTUnavailable naming what was found."""
    try:
        major = int(str(version).split('.')[0])
    except ValueError:
        raise TensorRTUnavailable(f'cannot read the TensorRT version {version!r}; da3_ros '
                                  f'needs TensorRT 10 ({INSTALL_HINT})') from None
    if major < REQUIRED_MAJOR:
        raise TensorRTUnavailable(
            f'found TensorRT {version}; da3_ros needs TensorRT 10 (TensorRT 8.6, as on JetPack '
            f'6.0, builds implicit-batch networks, has no IProgressMonitor and parses ONNX only '
            f'up to opset 17). Install: {INSTALL_HINT}')
    if major > REQUIRED_MAJOR:
        raise TensorRTUnavailable(
            f'found TensorRT {version}; da3_ros needs TensorRT 10 (TensorRT 11 removed the '
            f'weakly-typed BuilderFlag.FP16 that fp16 engines are built with). Install: '
            f'{INSTALL_HINT}')
    return version


def import_tensorrt():
    """The tensorrt module (TensorRT 10), or TensorRTUnavailable with an install hint."""
    try:
        import tensorrt
    except ImportError as err:
        raise TensorRTUnavailable(
            f'TensorRT is not available ({err}); install TensorRT 10 on a machine with an '
            f'NVIDIA GPU: {INSTALL_HINT}') from err
    check_tensorrt_version(getattr(tensorrt, '__version__', '?'))
    return tensorrt


_plugins_lock = threading.Lock()
_plugins_registered = False


def register_plugins(trt) -> None:
    """Register TensorRT's standard plugin library once per process (builds and runtimes).

    The exports need no plugin (graph_lint), but an engine that holds a plugin layer cannot be
    deserialized without the registry, so both sides register it."""
    global _plugins_registered
    with _plugins_lock:
        if _plugins_registered:
            return
        if not trt.init_libnvinfer_plugins(trt_logger(), ''):
            log.warning('TensorRT: init_libnvinfer_plugins failed; standard plugins missing')
        _plugins_registered = True


@dataclass(frozen=True)
class BuildEvent:
    """One progress report of the TensorRT builder.

    kind: 'start' (num_steps set), 'step' (step = steps done so far) or 'finish'
    phase: phase name; parent: enclosing phase name or None
    """

    kind: str
    phase: str
    parent: str | None = None
    step: int = 0
    num_steps: int = 0


class ProgressRelay:
    """Forwards IProgressMonitor calls to a callback, thread-safely (TensorRT may call from
    several threads). Ctrl-C inside a callback cancels the build at the next step."""

    def __init__(self, callback: Callable[[BuildEvent], None]):
        self.callback = callback
        self.cancelled = False
        self._lock = threading.Lock()

    def _emit(self, event: BuildEvent) -> None:
        try:
            with self._lock:
                self.callback(event)
        except KeyboardInterrupt:
            # TensorRT cannot take a Python exception here; cancel via step_complete
            self.cancelled = True

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        self._emit(BuildEvent('start', phase_name, parent_phase, 0, num_steps))

    def step_complete(self, phase_name: str, step: int) -> bool:
        self._emit(BuildEvent('step', phase_name, step=step + 1))
        return not self.cancelled

    def phase_finish(self, phase_name: str) -> None:
        self._emit(BuildEvent('finish', phase_name))


@functools.cache
def trt_logger():
    """One ILogger for all builders/runtimes, routing TensorRT messages to `logging`."""
    trt = import_tensorrt()

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            log.log(LOG_LEVELS.get(severity.name, logging.INFO), 'TensorRT: %s', msg)

    return Logger()


def _monitor(trt, relay: ProgressRelay):
    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            relay.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name, step):
            return relay.step_complete(phase_name, step)

        def phase_finish(self, phase_name):
            relay.phase_finish(phase_name)

    return Monitor()


class _cancel_on_sigint:
    """While building in the main thread, SIGINT only marks the relay cancelled: a
    KeyboardInterrupt raised inside a TensorRT callback (logger, monitor) cannot cross the C++
    builder, so the build stops at its next step and build_serialized raises it instead."""

    def __init__(self, relay: ProgressRelay):
        self.relay, self.previous, self.installed = relay, None, False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.installed = True
        return self

    def _handle(self, signum, frame):
        self.relay.cancelled = True

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGINT, self.previous if self.previous is not None
                          else signal.default_int_handler)
        return False


FP32_LAYER_TYPES = ('NORMALIZATION', 'SOFTMAX')   # LayerNorm statistics, attention weights


def keep_fp32_layers(trt, network) -> list[str]:
    """In fp16 builds, pin the layers where half precision is known to fail to fp32 (layer
    precision and output types; the builder prefers these constraints):
    - LayerNormalization (NORMALIZATION): mean/variance over 384..1536 channels;
    - Softmax (SOFTMAX): attention weights;
    - exp (UNARY EXP): the depth / confidence activations; fp16 exp overflows to inf above 11.1.
    Not pinned: the q.k MatMul of the first blocks, which have no q/k norm (alt_start onwards
    do); `--verify` shows when that overflows, and fp32 is the fallback. Returns layer names."""
    pinned = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        kind = layer.type.name
        if kind == 'UNARY':
            layer.__class__ = trt.IUnaryLayer          # the bindings' downcast idiom
            if layer.op != trt.UnaryOperation.EXP:
                continue
        elif kind not in FP32_LAYER_TYPES:
            continue
        layer.precision = trt.float32
        for out in range(layer.num_outputs):
            layer.set_output_type(out, trt.float32)
        pinned.append(layer.name)
    return pinned


def _set_precision(trt, config, precision: str) -> None:
    if precision == 'fp32':
        config.clear_flag(trt.BuilderFlag.TF32)    # TF32 is on by default: keep fp32 exact
        return
    if not hasattr(trt.BuilderFlag, 'FP16'):
        raise ConfigError(f'TensorRT {trt.__version__} has no weakly-typed FP16 flag '
                          f'(removed in TensorRT 11); build with precision fp32')
    config.set_flag(trt.BuilderFlag.FP16)
    config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)   # see keep_fp32_layers


def build_serialized(info: OnnxInfo, precision: str, profile: ViewProfile,
                     timing_cache: bytes = b'', workspace_gib: float | None = None,
                     progress: Callable[[BuildEvent], None] | None = None):
    """Parse the ONNX file and build an engine with TensorRT (needs a GPU).

    timing_cache: serialized timing cache to start from (b'' = empty)
    workspace_gib: builder workspace limit in GiB (None = TensorRT's default, the device memory)
    returns (serialized engine, updated serialized timing cache), both buffer objects
    """
    trt = import_tensorrt()
    register_plugins(trt)
    builder = trt.Builder(trt_logger())
    network = builder.create_network(0)            # explicit batch is the only mode in TRT 10
    parser = trt.OnnxParser(network, trt_logger())
    if not parser.parse_from_file(str(info.path)):   # from the file: finds external data
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise CheckpointError(f'TensorRT cannot parse {info.path}: {errors[:3]}')
    config = builder.create_builder_config()
    if workspace_gib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))
    _set_precision(trt, config, precision)
    if precision == 'fp16':
        pinned = keep_fp32_layers(trt, network)
        log.info('fp16 build: %d LayerNorm/Softmax/exp layers kept in fp32', len(pinned))
    opt_profile = builder.create_optimization_profile()
    for name in info.inputs:
        opt_profile.set_shape(name, *profile.shapes(name, info.height, info.width))
    config.add_optimization_profile(opt_profile)
    cache = config.create_timing_cache(timing_cache)
    # ignore_mismatch=False: a cache from another device is refused; start an empty one then
    if cache is None or not config.set_timing_cache(cache, False):
        log.warning('timing cache not usable here; starting an empty one')
        cache = config.create_timing_cache(b'')
        config.set_timing_cache(cache, False)
    relay = ProgressRelay(progress or (lambda event: None))
    monitor = _monitor(trt, relay)                # a local reference keeps it alive (TRT rule)
    config.progress_monitor = monitor
    with _cancel_on_sigint(relay):
        engine = builder.build_serialized_network(network, config)
    if relay.cancelled:
        raise KeyboardInterrupt
    if engine is None:
        raise ConfigError(f'TensorRT failed to build {info.path} ({precision}, views '
                          f'{profile.min_views}..{profile.max_views}); see the TensorRT log')
    return engine, cache.serialize()


@dataclass(frozen=True)
class EngineEntry:
    """A cached engine: paths, key, and whether this call built it."""

    engine_path: Path
    sidecar_path: Path
    key: EngineKey
    built: bool


def gpu_identity(name: str, capability: tuple[int, int], sm_count: int, total_bytes: int,
                 integrated: bool, board: str = '') -> str:
    """The GPU part of the engine key: name, compute capability and SM count; for integrated
    GPUs (Jetson: every Orin module reports "Orin" or "Orin (nvgpu)") also the memory in GiB and
    the board model, so an engine from an Orin Nano is not taken on an AGX Orin."""
    text = f'{name} sm{capability[0]}{capability[1]} {sm_count}SM'
    if integrated:
        text += f' {round(total_bytes / 2**30)}GiB'
        if board:
            text += f' {board}'
    return text


def board_model(path: str = '/proc/device-tree/model') -> str:
    """The board name of a Jetson (device tree), '' elsewhere."""
    try:
        return Path(path).read_bytes().rstrip(b'\0').decode(errors='replace').strip()
    except OSError:
        return ''


def cuda_device_name(device=None) -> str:
    """gpu_identity of a CUDA device (torch; default the current one), ConfigError without one."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError('building a TensorRT engine needs a CUDA device; none is visible')
    props = torch.cuda.get_device_properties(device if device is not None
                                             else torch.cuda.current_device())
    integrated = bool(getattr(props, 'is_integrated', False))
    return gpu_identity(props.name, (props.major, props.minor), props.multi_processor_count,
                        props.total_memory, integrated, board_model() if integrated else '')


def cached_or_build(onnx_path: str | os.PathLike, cache_dir: str | os.PathLike,
                    precision: str = 'fp16', profile: ViewProfile | None = None, *,
                    workspace_gib: float | None = None, force: bool = False,
                    gpu_name: str | None = None,
                    progress: Callable[[BuildEvent], None] | None = None) -> EngineEntry:
    """The engine for an ONNX file from cache_dir, built (and stored) when absent or stale.

    onnx_path: a file from `export_onnx`; its metadata is checked first (CheckpointError)
    cache_dir: folder of engines, sidecars and timing caches (created if needed)
    precision: 'fp16' or 'fp32'; profile: view counts (default ViewProfile())
    force: rebuild even when the cached engine matches
    gpu_name: overrides cuda_device_name() in the key
    progress: receives BuildEvents while building
    Raises TensorRTUnavailable without tensorrt.
    """
    info = read_onnx_info(onnx_path)
    check_file(info.path)          # plugin-free standard ops only, before TensorRT is touched
    check_precision(precision)
    if workspace_gib is not None and not workspace_gib > 0:
        raise ConfigError(f'workspace_gib must be > 0, got {workspace_gib!r}')
    profile = profile or ViewProfile()
    trt = import_tensorrt()
    gpu_name = gpu_name or cuda_device_name()
    key = make_key(info, precision, profile, trt.__version__, gpu_name)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    engine_path, sidecar_path = engine_files(cache_dir, key)
    reason = 'forced' if force else lookup(cache_dir, key)
    if reason is None:
        log.info('using cached engine %s', engine_path)
        return EngineEntry(engine_path, sidecar_path, key, built=False)
    log.info('building %s (%s)', engine_path.name, reason)
    timing_path = timing_cache_file(cache_dir, trt.__version__, gpu_name, precision)
    timing = timing_path.read_bytes() if timing_path.is_file() else b''
    engine, timing = build_serialized(info, precision, profile, timing, workspace_gib, progress)
    write_atomic(timing_path, timing)
    store(cache_dir, key, engine, {'onnx_path': str(info.path), 'workspace_gib': workspace_gib,
                                   'reason': reason})
    return EngineEntry(engine_path, sidecar_path, key, built=True)
