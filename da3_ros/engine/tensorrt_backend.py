"""Run a DA3 TensorRT engine (from `tensorrt_build`) on torch CUDA tensors.

    backend = TensorRTBackend('engines/da3-small_280x504_fp16_0123abcd4567ef89.engine',
                              expect_model='da3-small', expect_hw=(280, 504))
    out = backend.infer(images)        # images (1, S, 3, 280, 504) on cuda -> DA3Output on cuda

Inputs and outputs are torch CUDA tensors whose data pointers are handed to TensorRT
(`set_tensor_address`), and the engine is enqueued on torch's current stream, so there are no
host copies and no pycuda. The JSON sidecar written next to the engine says which model, size,
inputs, outputs and view range it was built for; it is checked before the engine is opened.
tensorrt is imported only when an engine is opened.
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
from da3_ros.engine.tensorrt_build import import_tensorrt, trt_logger
from da3_ros.errors import CheckpointError, ConfigError, InputError
from da3_ros.model.da3 import DA3Output
from da3_ros.model.variants import get_spec

log = logging.getLogger(__name__)

# TensorRT DataType member names -> torch dtypes; FP8, INT4, FP4 have no torch buffer type here
TRT_TO_TORCH = {'FLOAT': torch.float32, 'HALF': torch.float16, 'BF16': torch.bfloat16,
                'INT8': torch.int8, 'UINT8': torch.uint8, 'INT32': torch.int32,
                'INT64': torch.int64, 'BOOL': torch.bool}

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


class TensorRTBackend(GraphBackend):
    """A deserialized engine and one execution context (calls are serialised by a lock).

    engine_path: `<stem>.engine` with its `<stem>.json` sidecar beside it
    expect_model, expect_hw: if given, must match the sidecar (CheckpointError otherwise)
    device: the CUDA device the engine runs on
    """

    name = 'tensorrt'

    def __init__(self, engine_path: str | os.PathLike, expect_model: str | None = None,
                 expect_hw: tuple[int, int] | None = None, device: str | torch.device = 'cuda'):
        self.path = Path(engine_path)
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
        self._open()

    def _open(self) -> None:
        trt = import_tensorrt()
        if trt.__version__ != self.key.tensorrt_version:
            raise CheckpointError(f'{self.path} was built with TensorRT '
                                  f'{self.key.tensorrt_version}, this is {trt.__version__}; '
                                  f'rebuild it')
        with torch.cuda.device(self.device):
            if torch.cuda.get_device_name() != self.key.gpu_name:
                log.warning('%s was built on %s, running on %s', self.path.name,
                            self.key.gpu_name, torch.cuda.get_device_name())
            self.runtime = trt.Runtime(trt_logger())
            self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise CheckpointError(f'TensorRT cannot deserialize {self.path}')
            self.context = self.engine.create_execution_context()
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

    def infer(self, images: Tensor, extrinsics: Tensor | None = None,
              intrinsics: Tensor | None = None, *, ref_view_strategy: str = 'first',
              use_ray_pose: bool = False, return_rays: bool = False,
              return_descriptors: bool = False) -> DA3Output:
        """See Backend.infer; tensors may live anywhere, outputs are on `self.device`."""
        self.check_request(images, extrinsics, ref_view_strategy, use_ray_pose, return_rays,
                           return_descriptors)
        if self.supports_cameras and extrinsics is None:
            raise InputError(f'{self.path.name} was built with camera input; pass extrinsics '
                             f'and intrinsics')
        views = images.shape[1]
        check_views(views, self.profile)
        images, extrinsics, intrinsics = (None if t is None else t.to(self.device)
                                          for t in (images, extrinsics, intrinsics))
        feeds = self.graph_inputs(images, extrinsics, intrinsics)
        with self._lock, torch.cuda.device(self.device):
            named = self._execute(feeds, views)
        return self.to_output(named)

    def _execute(self, feeds: dict[str, Tensor], views: int) -> dict[str, Tensor]:
        """Bind input/output buffers and enqueue on the current stream."""
        for name, tensor in feeds.items():
            tensor = feeds[name] = tensor.to(self.dtypes[name]).contiguous()
            if not self.context.set_input_shape(name, tuple(tensor.shape)):
                raise InputError(f'TensorRT rejected {name} shape {tuple(tensor.shape)}')
            self.context.set_tensor_address(name, tensor.data_ptr())
        planned = output_shapes(self.key.outputs, views, self.network_hw)
        outputs = {}
        for name in self.key.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            if shape != planned[name]:
                raise CheckpointError(f'engine output {name} has shape {shape}, expected '
                                      f'{planned[name]}')
            outputs[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        # same stream as the torch ops around it: buffers freed after return are reused only
        # after the engine has finished with them (caching allocator is stream-ordered)
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f'TensorRT execute_async_v3 failed for {self.path.name}')
        return {name: out.float() for name, out in outputs.items()}
