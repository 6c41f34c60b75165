"""One call from configuration values to a ready Predictor (what nodes and the CLI use).

    predictor = make_predictor('depth-anything/DA3-SMALL', backend='torch', device='cuda',
                               precision='bf16')
    predictor = make_predictor('da3-small', backend='onnxruntime', model_file='s.onnx')
    predictor = make_predictor('da3-small', backend='tensorrt', model_file='s_fp16_....engine')
"""
from __future__ import annotations

import os

from da3_ros.engine.predictor import Predictor
from da3_ros.errors import ConfigError

BACKENDS = ('torch', 'onnxruntime', 'tensorrt')
ORT_PROVIDERS = {'cpu': ['CPUExecutionProvider'],
                 'cuda': ['CUDAExecutionProvider', 'CPUExecutionProvider']}


def make_predictor(model: str | os.PathLike, backend: str = 'torch', device: str = 'cpu',
                   precision: str = 'fp32', model_file: str | os.PathLike | None = None,
                   compile: bool = False, **predictor_options) -> Predictor:
    """A Predictor over the chosen backend.

    model: HF id or checkpoint folder (torch); for graph backends the expected model name,
        checked against the file's metadata ('' skips the check)
    backend: 'torch', 'onnxruntime' or 'tensorrt'
    device: 'cpu', 'cuda' or 'cuda:N' (torch and tensorrt; onnxruntime picks providers by type)
    precision: torch only: 'auto', 'fp32', 'bf16', 'fp16' (an engine's precision is fixed at
        build); auto: TorchBackend's resolve_precision
    model_file: the .onnx / .engine file for graph backends
    compile: torch only: torch.compile the network (CUDA, precision bf16; TorchBackend)
    predictor_options: Predictor keywords (process_res, method, gpu_preprocess, ...)
    """
    if backend not in BACKENDS:
        raise ConfigError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if backend == 'torch':
        if model_file is not None:
            raise ConfigError('the torch backend loads checkpoints by --model; '
                              'model_file is for onnxruntime / tensorrt')
        from da3_ros.engine.torch_backend import TorchBackend
        return Predictor(TorchBackend.from_pretrained(model, device, precision, compile),
                         **predictor_options)
    if compile:
        raise ConfigError(f'compile is for the torch backend; the {backend} engine is '
                          'already compiled')
    if model_file is None:
        raise ConfigError(f'the {backend} backend needs model_file (.onnx or .engine)')
    expect = str(model) or None
    if expect is not None:
        from da3_ros.model.variants import get_spec
        expect = get_spec(expect).name          # HF ids name their variant
    if backend == 'onnxruntime':
        from da3_ros.engine.onnx_backend import OnnxBackend
        providers = ORT_PROVIDERS['cuda' if str(device).startswith('cuda') else 'cpu']
        return Predictor(OnnxBackend(model_file, providers, expect), **predictor_options)
    from da3_ros.engine.tensorrt_backend import TensorRTBackend
    return Predictor(TensorRTBackend(model_file, expect_model=expect, device=device),
                     **predictor_options)
