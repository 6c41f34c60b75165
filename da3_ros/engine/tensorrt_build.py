"""Build TensorRT engines from da3_ros ONNX files, cached by what determines the engine.

    entry = cached_or_build('da3-small_280x504.onnx', 'engines/', 'fp16', ViewProfile(1, 2, 4))
    entry.engine_path   # engines/da3-small_280x504_fp16_<16 hex>.engine (+ .json sidecar)

One engine per ONNX file, hence per resolution: the position embeddings and RoPE tables are
constants for the file's (H, W), so "profiles over resolution" means one
ONNX export and one engine per (H, W). Inside an engine only the view axis S is dynamic; its
optimization profile is `ViewProfile` (min/opt/max views), applied to 'images' (1, S, 3, H, W)
and, for camera-conditioned files, 'pose_enc' (1, S, 9).

The cache key (`EngineKey`) is the sha256 of the ONNX bytes (and its external .data file),
the TensorRT version, the GPU name, the precision, the view profile and the da3_ros version;
any change gives another file name, so a stale engine is never loaded. Writes are atomic
(temporary file + os.replace). The TensorRT timing cache is kept next to the engines, one per
TensorRT version and GPU, and grows with every build.

Written against the TensorRT 10 Python API. 'fp16' uses the weakly-typed BuilderFlag.FP16
(deprecated since 10.12, removed in 11: such a TensorRT raises ConfigError here); 'fp32'
clears BuilderFlag.TF32 so that fp32 means fp32. tensorrt is imported only when building.
"""
from __future__ import annotations

import functools
import logging
import os
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
    write_atomic,
)
from da3_ros.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

LOG_LEVELS = {'INTERNAL_ERROR': logging.CRITICAL, 'ERROR': logging.ERROR,
              'WARNING': logging.WARNING, 'INFO': logging.INFO, 'VERBOSE': logging.DEBUG}


class TensorRTUnavailable(ConfigError):
    """The tensorrt Python package cannot be imported (or lacks a needed TensorRT 10 API)."""


def import_tensorrt():
    """The tensorrt module, or TensorRTUnavailable with an install hint."""
    try:
        import tensorrt
    except ImportError as err:
        raise TensorRTUnavailable(
            f'TensorRT is not available ({err}); install the TensorRT 10 Python package '
            f'(pip install tensorrt) on a machine with an NVIDIA GPU') from err
    return tensorrt


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


def _set_precision(trt, config, precision: str) -> None:
    if precision == 'fp32':
        config.clear_flag(trt.BuilderFlag.TF32)    # TF32 is on by default: keep fp32 exact
        return
    if not hasattr(trt.BuilderFlag, 'FP16'):
        raise ConfigError(f'TensorRT {trt.__version__} has no weakly-typed FP16 flag '
                          f'(removed in TensorRT 11); build with precision fp32')
    config.set_flag(trt.BuilderFlag.FP16)


def build_serialized(info: OnnxInfo, precision: str, profile: ViewProfile,
                     timing_cache: bytes = b'', workspace_gib: float | None = None,
                     progress: Callable[[BuildEvent], None] | None = None):
    """Parse the ONNX file and build an engine with TensorRT (needs a GPU).

    timing_cache: serialized timing cache to start from (b'' = empty)
    workspace_gib: builder workspace limit in GiB (None = TensorRT's default, the device memory)
    returns (serialized engine, updated serialized timing cache), both buffer objects
    """
    trt = import_tensorrt()
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


def cuda_device_name() -> str:
    """Name of the current CUDA device (torch), ConfigError without one."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError('building a TensorRT engine needs a CUDA device; none is visible')
    return torch.cuda.get_device_name()


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
    gpu_name: overrides torch.cuda.get_device_name() in the key
    progress: receives BuildEvents while building
    Raises TensorRTUnavailable without tensorrt.
    """
    info = read_onnx_info(onnx_path)
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
    timing_path = timing_cache_file(cache_dir, trt.__version__, gpu_name)
    timing = timing_path.read_bytes() if timing_path.is_file() else b''
    engine, timing = build_serialized(info, precision, profile, timing, workspace_gib, progress)
    write_atomic(timing_path, timing)
    store(cache_dir, key, engine, {'onnx_path': str(info.path), 'workspace_gib': workspace_gib,
                                   'reason': reason})
    return EngineEntry(engine_path, sidecar_path, key, built=True)
