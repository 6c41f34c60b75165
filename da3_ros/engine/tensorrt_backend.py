"""Run a DA3 TensorRT engine (from `tensorrt_build`) on torch CUDA tensors.

    backend = TensorRTBackend('engines/da3-small_280x504_fp16_0123abcd4567ef89.engine',
                              expect_model='da3-small', expect_hw=(280, 504))
    out = backend.infer(images)        # images (1, S, 3, 280, 504) on cuda -> DA3Output on cuda

Inputs and outputs are torch CUDA tensors whose data pointers are handed to TensorRT
(`set_tensor_address`; contiguous, 256-byte aligned, copied when not), so there are no host
copies and no pycuda. The engine is enqueued on torch's current stream, or, when that is the
legacy default stream (TensorRT then synchronises around every enqueue), on a stream of the
backend's own, ordered after and before the current one. Every TensorRT call that reports
failure by its return value (deserialize, create_execution_context, set_input_shape,
set_tensor_address, execute_async_v3) is checked. The JSON sidecar written next to the engine
(a symlinked engine path is resolved first) says which model, size, inputs, outputs and view
range it was built for; it is checked before the engine is opened. tensorrt (version 10 only)
is imported only when an engine is opened, and the standard plugins are registered first.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import torch
from torch import Tensor

from da3_ros.engine.backend import GraphBackend
from da3_ros.engine.engine_cache import EngineKey, ViewProfile, read_sidecar
from da3_ros.engine.tensorrt_build import (
    cuda_device_name,
    import_tensorrt,
    register_plugins,
    trt_logger,
)
from da3_ros.errors import CheckpointError, ConfigError, InputError
from da3_ros.model.variants import get_spec

log = logging.getLogger(__name__)

# TensorRT DataType member names -> torch dtypes; FP8, INT4, FP4 have no torch buffer type here
TRT_TO_TORCH = {'FLOAT': torch.float32, 'HALF': torch.float16, 'BF16': torch.bfloat16,
                'INT8': torch.int8, 'UINT8': torch.uint8, 'INT32': torch.int32,
                'INT64': torch.int64, 'BOOL': torch.bool}

ALIGNMENT = 256     # bytes; set_tensor_address needs at least this for every I/O buffer

# per-view trailing shape of every graph output; 'HW' stands for the engine's (H, W)
OUTPUT_TAILS = {'depth': 'HW', 'depth_conf': 'HW', 'sky': 'HW',
                'extrinsics': (3, 4), 'intrinsics': (3, 3)}


def torch_dtype(trt_dtype_name: str) -> torch.dtype:
    """torch dtype for a TensorRT DataType name ('FLOAT', 'HALF', ...); CheckpointError if none."""
    if trt_dtype_name not in TRT_TO_TORCH:
        raise CheckpointError(f'engine tensor type {trt_dtype_name} has no torch buffer type '
                              f'(supported: {sorted(TRT_TO_TORCH)})')
    return TRT_TO_TORCH[trt_dtype_name]


def output_shapes(output_names: tuple[str, ...], views: int, hw: tuple[int, int]
                  ) -> dict[str, tuple[int, ...]]:
    """Shapes of the graph outputs for S views: (1, S, H, W) maps, (1, S, 3, 4) / (1, S, 3, 3)."""
    if unknown := [n for n in output_names if n not in OUTPUT_TAILS]:
        raise CheckpointError(f'unknown engine outputs {unknown}; known: {list(OUTPUT_TAILS)}')
    return {name: (1, views, *(hw if OUTPUT_TAILS[name] == 'HW' else OUTPUT_TAILS[name]))
            for name in output_names}


def check_views(views: int, profile: ViewProfile) -> None:
    """ConfigError when S is outside the engine's optimization profile."""
    if not profile.min_views <= views <= profile.max_views:
        raise ConfigError(f'the engine takes {profile.min_views}..{profile.max_views} views, '
                          f'got {views}; rebuild it with `da3-ros build-engine --max-views`')


def check_sidecar(key: EngineKey, path: Path, expect_model: str | None,
                  expect_hw: tuple[int, int] | None) -> None:
    """CheckpointError when the engine was built for another model or (H, W)."""
    if expect_model is not None and key.model != expect_model:
        raise CheckpointError(f'{path} holds model {key.model!r}, expected {expect_model!r}')
    if expect_hw is not None and tuple(int(v) for v in expect_hw) != (key.height, key.width):
        raise CheckpointError(f'{path} was built for {key.height}x{key.width} (HxW), '
                              f'expected {expect_hw[0]}x{expect_hw[1]}')


def as_binding(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """tensor in dtype, contiguous, with an ALIGNMENT-aligned data pointer; copied into an
    aligned slice of a fresh buffer when not (a contiguous view can start anywhere; CUDA's
    caching allocator aligns fresh blocks to 512 bytes, the CPU allocator only to 64)."""
    tensor = tensor.to(dtype).contiguous()
    if tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    spare = ALIGNMENT // tensor.element_size()
    flat = torch.empty(tensor.numel() + spare, dtype=dtype, device=tensor.device)
    start = (-flat.data_ptr() % ALIGNMENT) // tensor.element_size()
    out = flat[start:start + tensor.numel()].view(tensor.shape)
    return out.copy_(tensor)


def bind(context, name: str, tensor: Tensor) -> None:
    """set_tensor_address with its checks: CheckpointError for a misaligned buffer or a
    refused address (TensorRT returns False: unknown name, misaligned, wrong mode)."""
    if tensor.data_ptr() % ALIGNMENT:
        raise CheckpointError(f'buffer of {name} at {tensor.data_ptr():#x} is not '
                              f'{ALIGNMENT}-byte aligned')
    if not context.set_tensor_address(name, tensor.data_ptr()):
        raise CheckpointError(f'TensorRT refused the address of tensor {name!r}')


class TensorRTBackend(GraphBackend):
    """A deserialized engine and one execution context (calls are serialised by a lock).

    engine_path: `<stem>.engine` with its `<stem>.json` sidecar beside it
    expect_model, expect_hw: if given, must match the sidecar (CheckpointError otherwise)
    device: the CUDA device the engine runs on
    """

    name = 'tensorrt'

    def __init__(self, engine_path: str | os.PathLike, expect_model: str | None = None,
                 expect_hw: tuple[int, int] | None = None, device: str | torch.device = 'cuda'):
        self.path = Path(engine_path).resolve()      # a stable symlink (--link) to the engine
        sidecar = self.path.with_suffix('.json')
        if not sidecar.is_file():
            raise CheckpointError(f'{sidecar} is missing; build engines with '
                                  f'`da3-ros build-engine` (it writes the sidecar)')
        self.key, size = read_sidecar(sidecar)
        check_sidecar(self.key, self.path, expect_model, expect_hw)
        if not self.path.is_file() or self.path.stat().st_size != size:
            raise CheckpointError(f'{self.path} is missing or its size differs from {sidecar}')
        self.spec = get_spec(self.key.model)
        self.network_hw = (self.key.height, self.key.width)
        self.supports_cameras = 'pose_enc' in self.key.inputs
        self.profile = self.key.profile
        self.device = torch.device(device)
        self._lock = threading.Lock()
        self._stream = None          # own stream, made when the current one is the default
        self._open()

    def _open(self) -> None:
        trt = import_tensorrt()
        if trt.__version__ != self.key.tensorrt_version:
            raise CheckpointError(f'{self.path} was built with TensorRT '
                                  f'{self.key.tensorrt_version}, this is {trt.__version__}; '
                                  f'rebuild it')
        register_plugins(trt)
        with torch.cuda.device(self.device):
            here = cuda_device_name(self.device)
            if here != self.key.gpu_name:
                log.warning('%s was built on %s, running on %s', self.path.name,
                            self.key.gpu_name, here)
            self.runtime = trt.Runtime(trt_logger())
            self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise CheckpointError(f'TensorRT {trt.__version__} cannot deserialize '
                                      f'{self.path} (see the TensorRT log); rebuild it here')
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise CheckpointError(f'TensorRT cannot create an execution context for '
                                      f'{self.path.name} (out of GPU memory?)')
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = tuple(n for n in names
                       if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        outputs = tuple(n for n in names if n not in inputs)
        if set(inputs) != set(self.key.inputs) or set(outputs) != set(self.key.outputs):
            raise CheckpointError(f'{self.path}: engine I/O {inputs}/{outputs} differs from its '
                                  f'sidecar {self.key.inputs}/{self.key.outputs}')
        self.dtypes = {n: torch_dtype(self.engine.get_tensor_dtype(n).name) for n in names}
        log.info('opened %s (%s, %dx%d, views %d..%d)', self.path.name, self.key.model,
                 *self.network_hw, self.profile.min_views, self.profile.max_views)

    def graph_inputs(self, images: Tensor, extrinsics: Tensor | None,
                     intrinsics: Tensor | None) -> dict[str, Tensor]:
        """See GraphBackend.graph_inputs; tensors may live anywhere (moved to `self.device`),
        and an engine built with camera input needs them."""
        if self.supports_cameras and extrinsics is None:
            raise InputError(f'{self.path.name} was built with camera input; pass extrinsics '
                             f'and intrinsics')
        images, extrinsics, intrinsics = (None if t is None else t.to(self.device)
                                          for t in (images, extrinsics, intrinsics))
        return super().graph_inputs(images, extrinsics, intrinsics)

    def run_graph(self, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        """The raw graph: named inputs ('images' (1, S, 3, H, W), 'pose_enc' (1, S, 9)) ->
        named float32 outputs on `self.device` (used by infer and by engine_verify)."""
        if set(feeds) != set(self.key.inputs):
            raise InputError(f'{self.path.name} takes inputs {self.key.inputs}, got '
                             f'{tuple(feeds)}')
        views = feeds['images'].shape[1]
        check_views(views, self.profile)
        feeds = {name: t.to(self.device) for name, t in feeds.items()}
        with self._lock, torch.cuda.device(self.device):
            return self._execute(feeds, views)

    def _stream_for(self, current: torch.cuda.Stream) -> torch.cuda.Stream:
        """current, unless it is the legacy default stream: then the backend's own stream."""
        if current.cuda_stream != 0:
            return current
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.device)
        return self._stream

    def _execute(self, feeds: dict[str, Tensor], views: int) -> dict[str, Tensor]:
        """Bind input/output buffers and enqueue on a non-default stream ordered with torch's."""
        current = torch.cuda.current_stream(self.device)
        stream = self._stream_for(current)
        if stream is not current:
            stream.wait_stream(current)         # inputs were written on the current stream
        with torch.cuda.stream(stream):
            bound = {}
            for name, tensor in feeds.items():
                bound[name] = as_binding(tensor, self.dtypes[name])
                if not self.context.set_input_shape(name, tuple(bound[name].shape)):
                    raise InputError(f'TensorRT rejected {name} shape {tuple(tensor.shape)}')
                bind(self.context, name, bound[name])
            planned = output_shapes(self.key.outputs, views, self.network_hw)
            outputs = {}
            for name in self.key.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                if shape != planned[name]:
                    raise CheckpointError(f'engine output {name} has shape {shape}, expected '
                                          f'{planned[name]}')
                outputs[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
                bind(self.context, name, outputs[name])
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(f'TensorRT execute_async_v3 failed for {self.path.name}')
            results = {name: out.float() for name, out in outputs.items()}
        if stream is not current:
            # the caching allocator is stream-ordered: tell it which streams use what
            current.wait_stream(stream)
            for tensor in (*feeds.values(), *bound.values()):
                tensor.record_stream(stream)
            for tensor in results.values():
                tensor.record_stream(current)
        return results
