"""A stand-in for the `tensorrt` Python package (TensorRT 10), for machines without TensorRT.

It has only what da3_ros calls, under TensorRT 10's Python names and argument order (module
functions, Builder, OnnxParser, IBuilderConfig, IOptimizationProfile, ITimingCache, Runtime,
ICudaEngine, IExecutionContext, ILogger, IProgressMonitor and the enums), and it fails the way
TensorRT reports failure to Python: None from build_serialized_network,
deserialize_cuda_engine and create_execution_context, False from parse_from_file,
set_timing_cache, set_input_shape, set_tensor_address and execute_async_v3. What fails is set
through `fake.script`; every call is appended to `fake.calls`. It builds and runs nothing.
"""
from __future__ import annotations

import enum
import types

ENGINE_BYTES = b'fake serialized engine'


class _Enum(enum.Enum):
    def __repr__(self):
        return f'{type(self).__name__}.{self.name}'


def make_module(version: str = '10.3.0', outputs=('depth', 'depth_conf', 'extrinsics',
                                                  'intrinsics'), inputs=('images',)):
    """A fresh fake `tensorrt` module; install it with monkeypatch.setitem(sys.modules, ...)."""
    trt = types.ModuleType('tensorrt')
    trt.__version__ = version
    trt.calls = []
    trt.script = {'parse': True, 'build': None, 'deserialize': True, 'context': True,
                  'set_address': True, 'set_shape': True, 'execute': True, 'plugins': True,
                  'shapes': {}}

    def record(name, *args):
        trt.calls.append((name, *args))

    class ILogger:
        Severity = _Enum('Severity', ['INTERNAL_ERROR', 'ERROR', 'WARNING', 'INFO', 'VERBOSE'])

        def __init__(self):
            pass

    class IProgressMonitor:
        def __init__(self):
            pass

    flags = ['BF16', 'INT8', 'TF32', 'STRONGLY_TYPED']
    if version.startswith('10.'):          # TensorRT 11 dropped the weakly-typed FP16 flag
        flags += ['FP16', 'PREFER_PRECISION_CONSTRAINTS', 'OBEY_PRECISION_CONSTRAINTS']
    trt.BuilderFlag = _Enum('BuilderFlag', flags)
    trt.MemoryPoolType = _Enum('MemoryPoolType', ['WORKSPACE', 'DLA_MANAGED_SRAM'])
    trt.TensorIOMode = _Enum('TensorIOMode', ['NONE', 'INPUT', 'OUTPUT'])
    trt.DataType = _Enum('DataType', ['FLOAT', 'HALF', 'BF16', 'INT8', 'INT32', 'INT64',
                                      'BOOL', 'UINT8', 'FP8'])
    trt.float32 = trt.DataType.FLOAT
    trt.LayerType = _Enum('LayerType', ['CONVOLUTION', 'MATRIX_MULTIPLY', 'SOFTMAX',
                                        'NORMALIZATION', 'UNARY', 'ELEMENTWISE'])
    trt.UnaryOperation = _Enum('UnaryOperation', ['EXP', 'LOG', 'SQRT', 'ERF', 'SIN', 'COS'])

    def init_libnvinfer_plugins(logger, namespace):
        record('init_libnvinfer_plugins', namespace)
        return trt.script['plugins']

    class ITimingCache:
        def __init__(self, blob):
            self.blob = bytes(blob)

        def serialize(self):
            return self.blob + b'+timing'

    class IOptimizationProfile:
        def set_shape(self, input, min, opt, max):    # noqa: A002 - TensorRT's names
            record('set_shape', input, tuple(min), tuple(opt), tuple(max))

    class IBuilderConfig:
        def __init__(self):
            self.progress_monitor = None
            self.flags = {trt.BuilderFlag.TF32}

        def set_memory_pool_limit(self, pool, pool_size):
            record('set_memory_pool_limit', pool, pool_size)

        def set_flag(self, flag):
            self.flags.add(flag)

        def clear_flag(self, flag):
            self.flags.discard(flag)

        def get_flag(self, flag):
            return flag in self.flags

        def add_optimization_profile(self, profile):
            record('add_optimization_profile')
            return 0

        def create_timing_cache(self, serialized_timing_cache):
            return ITimingCache(serialized_timing_cache)

        def set_timing_cache(self, cache, ignore_mismatch):
            record('set_timing_cache', cache.blob, ignore_mismatch)
            return True

    class ILayer:
        def __init__(self, name, type, op=None):      # noqa: A002 - TensorRT's names
            self.name, self.type, self._op = name, type, op
            self.num_outputs, self.precision, self.output_types = 1, trt.DataType.FLOAT, {}

        def set_output_type(self, index, dtype):
            self.output_types[index] = dtype

    class IUnaryLayer(ILayer):
        @property
        def op(self):
            return self._op

    class INetworkDefinition:
        def __init__(self):
            T, U = trt.LayerType, trt.UnaryOperation
            self.layers = [ILayer('attn/Softmax', T.SOFTMAX), ILayer('norm', T.NORMALIZATION),
                           ILayer('head/Exp', T.UNARY, U.EXP), ILayer('gelu', T.UNARY, U.ERF),
                           ILayer('qk/MatMul', T.MATRIX_MULTIPLY)]
            for layer in self.layers:
                layer.precision = None

        @property
        def num_layers(self):
            return len(self.layers)

        def get_layer(self, index):
            return self.layers[index]

    class Builder:
        def __init__(self, logger):
            record('Builder')

        def create_network(self, flags=0):
            trt.last_network = INetworkDefinition()
            return trt.last_network

        def create_builder_config(self):
            trt.last_config = IBuilderConfig()
            return trt.last_config

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            record('build_serialized_network', frozenset(f.name for f in config.flags))
            hook = trt.script['build']
            if hook is not None:
                return hook(config)
            return ENGINE_BYTES

    class ParserError:
        def __init__(self, text):
            self.text = text

        def __str__(self):
            return self.text

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = 0

        def parse_from_file(self, model):
            record('parse_from_file', model)
            if not trt.script['parse']:
                self.num_errors = 1
            return trt.script['parse']

        def get_error(self, index):
            return ParserError('In node 7 (importScatterElements): plugin not found')

    class IExecutionContext:
        def set_input_shape(self, name, shape):
            record('set_input_shape', name, tuple(shape))
            return trt.script['set_shape']

        def get_tensor_shape(self, name):
            return trt.script['shapes'].get(name, (1, 1))

        def set_tensor_address(self, name, memory):
            record('set_tensor_address', name, memory)
            return trt.script['set_address']

        def execute_async_v3(self, stream_handle):
            record('execute_async_v3', stream_handle)
            return trt.script['execute']

    class ICudaEngine:
        names = (*inputs, *outputs)

        @property
        def num_io_tensors(self):
            return len(self.names)

        def get_tensor_name(self, index):
            return self.names[index]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name in inputs else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return trt.DataType.FLOAT

        def create_execution_context(self):
            record('create_execution_context')
            return IExecutionContext() if trt.script['context'] else None

    class Runtime:
        def __init__(self, logger):
            record('Runtime')

        def deserialize_cuda_engine(self, serialized_engine):
            record('deserialize_cuda_engine', bytes(serialized_engine))
            return ICudaEngine() if trt.script['deserialize'] else None

    for obj in (ILogger, IProgressMonitor, init_libnvinfer_plugins, Builder, OnnxParser,
                Runtime, IBuilderConfig, IOptimizationProfile, ITimingCache, ICudaEngine,
                IExecutionContext, INetworkDefinition, ILayer, IUnaryLayer):
        setattr(trt, obj.__name__, obj)
    return trt
