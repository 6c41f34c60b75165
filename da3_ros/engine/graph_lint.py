"""A lint of exported ONNX graphs for what TensorRT 10's ONNX parser builds without plugins.

    problems = lint_model(onnx.load('da3-small_280x504.onnx'))     # [] when clean
    check_file('da3-small_280x504.onnx')                           # CheckpointError otherwise

Pure: reads an onnx ModelProto, never imports TensorRT. The rules, from onnx-tensorrt's
operator table (TENSORRT_OPS_URL) for TensorRT 10 (release/10.3 through 10.15: "opset 9 to
opset 20" in 10.0 to 10.x before the opset 21+ updates; every op of ALLOWED_OPS is listed there
as supported "Y" for FP32/FP16):

- every node's op is in ALLOWED_OPS (the ops DA3 exports need; adding one means checking it
  in that table first) and in the default ONNX domain (other domains are plugins);
- no ScatterElements / ScatterND with a `reduction` (onnx-tensorrt imports those only through
  the "ScatterElements" plugin of TensorRT 10.3's plugin library), no If / Loop / Scan /
  NonZero (data-dependent control flow or shapes);
- no DOUBLE tensors (initializers, Constant values, Cast targets, typed values);
- the default-domain opset within MIN_OPSET..MAX_OPSET;
- Resize only with the modes TensorRT implements (mode nearest/linear, its coordinate
  transformation and nearest modes, no antialias);
- `axes` of Slice / Squeeze / Unsqueeze / Reduce* are constants (initializer or Constant);
- graph inputs and outputs have every dimension fixed except axis 1, the symbolic view axis.
"""
from __future__ import annotations

import os
from pathlib import Path

from da3_ros.errors import CheckpointError

TENSORRT_OPS_URL = 'https://github.com/onnx/onnx-tensorrt/blob/main/docs/operators.md'
TENSORRT_OPS_SOURCE = (f"onnx-tensorrt's operator table, {TENSORRT_OPS_URL} (TensorRT 10.x; "
                       '10.3 is the oldest release this package targets)')
MIN_OPSET, MAX_OPSET = 9, 20
VIEW_AXIS = 1

ALLOWED_OPS = frozenset({
    'Abs', 'Add', 'And', 'Cast', 'Ceil', 'Clip', 'Concat', 'Constant', 'ConstantOfShape',
    'Conv', 'ConvTranspose', 'Cos', 'Div', 'Equal', 'Erf', 'Exp', 'Expand', 'Flatten',
    'Floor', 'Gather', 'Gemm', 'Greater', 'Identity', 'LayerNormalization', 'Less', 'Log',
    'MatMul', 'Max', 'Min', 'Mod', 'Mul', 'Neg', 'Not', 'Or', 'Pow', 'Range', 'Reciprocal',
    'ReduceMax', 'ReduceMean', 'ReduceSum', 'Relu', 'Reshape', 'Resize', 'Shape', 'Sigmoid',
    'Sign', 'Sin', 'Slice', 'Softmax', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Tan', 'Tanh',
    'Tile', 'Transpose', 'Unsqueeze', 'Where',
})
FORBIDDEN_OPS = {'If': 'control flow', 'Loop': 'control flow', 'Scan': 'control flow',
                 'NonZero': 'data-dependent output shape'}
SCATTER_OPS = ('ScatterElements', 'ScatterND', 'Scatter')
RESIZE_MODES = frozenset({'nearest', 'linear'})
RESIZE_COORDINATES = frozenset({'half_pixel', 'pytorch_half_pixel', 'tf_half_pixel_for_nn',
                                'asymmetric', 'align_corners'})
RESIZE_NEAREST = frozenset({'floor', 'ceil', 'round_prefer_floor', 'round_prefer_ceil'})
# op -> index of its `axes` input (opset >= 13/18); the attribute form is constant by nature
AXES_INPUT = {'Slice': 3, 'Squeeze': 1, 'Unsqueeze': 1, 'ReduceSum': 1, 'ReduceMean': 1,
              'ReduceMax': 1}
DOUBLE = 11     # onnx.TensorProto.DOUBLE


def _attr(node, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            if a.type == a.STRING:
                return a.s.decode()
            if a.type == a.INT:
                return a.i
            if a.type == a.FLOAT:
                return a.f
            if a.type == a.TENSOR:
                return a.t
            return a
    return default


def _where(node) -> str:
    return f'{node.op_type} {node.name or "(unnamed)"}'


def _lint_opset(model) -> list[str]:
    problems = []
    for entry in model.opset_import:
        if entry.domain in ('', 'ai.onnx'):
            if not MIN_OPSET <= entry.version <= MAX_OPSET:
                problems.append(f'opset {entry.version} is outside {MIN_OPSET}..{MAX_OPSET} '
                                f'(TensorRT 10)')
        else:
            problems.append(f'opset domain {entry.domain!r}: custom domains need plugins')
    return problems


def _lint_nodes(graph) -> list[str]:
    problems = []
    constants = {t.name for t in graph.initializer}
    constants |= {out for n in graph.node if n.op_type == 'Constant' for out in n.output}
    for node in graph.node:
        where = _where(node)
        if node.domain not in ('', 'ai.onnx'):
            problems.append(f'{where}: domain {node.domain!r} (a plugin op)')
            continue
        if node.op_type in SCATTER_OPS and _attr(node, 'reduction', 'none') != 'none':
            problems.append(f'{where}: scatter with reduction={_attr(node, "reduction")!r} '
                            f'(TensorRT imports it only as a plugin)')
        elif node.op_type in FORBIDDEN_OPS:
            problems.append(f'{where}: {FORBIDDEN_OPS[node.op_type]} is not allowed')
        elif node.op_type not in ALLOWED_OPS:
            problems.append(f'{where}: op not in the allowed list ({TENSORRT_OPS_SOURCE})')
        if node.op_type == 'Cast' and _attr(node, 'to') == DOUBLE:
            problems.append(f'{where}: casts to DOUBLE')
        for name in ('value', 'value_float', 'value_floats'):
            value = _attr(node, name)
            if node.op_type in ('Constant', 'ConstantOfShape') and hasattr(value, 'data_type') \
                    and value.data_type == DOUBLE:
                problems.append(f'{where}: DOUBLE constant')
        if node.op_type == 'Resize':
            problems += _lint_resize(node)
        index = AXES_INPUT.get(node.op_type)
        if index is not None and len(node.input) > index and node.input[index] \
                and node.input[index] not in constants:
            problems.append(f'{where}: axes input {node.input[index]!r} is not a constant')
    return problems


def _lint_resize(node) -> list[str]:
    where, problems = _where(node), []
    checks = (('mode', 'nearest', RESIZE_MODES),
              ('coordinate_transformation_mode', 'half_pixel', RESIZE_COORDINATES),
              ('nearest_mode', 'round_prefer_floor', RESIZE_NEAREST))
    for name, default, allowed in checks:
        value = _attr(node, name, default)
        if value not in allowed:
            problems.append(f'{where}: Resize {name}={value!r} (TensorRT supports '
                            f'{sorted(allowed)})')
    if _attr(node, 'antialias', 0):
        problems.append(f'{where}: Resize antialias is not supported')
    if _attr(node, 'keep_aspect_ratio_policy', 'stretch') != 'stretch':
        problems.append(f'{where}: Resize keep_aspect_ratio_policy must be stretch')
    return problems


def _lint_types(graph) -> list[str]:
    problems = [f'initializer {t.name}: DOUBLE' for t in graph.initializer
                if t.data_type == DOUBLE]
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.tensor_type.elem_type == DOUBLE:
            problems.append(f'tensor {value.name}: DOUBLE')
    return problems


def _lint_io(graph) -> list[str]:
    problems = []
    initialized = {t.name for t in graph.initializer}
    for value in (*graph.input, *graph.output):
        if value.name in initialized:
            continue
        dims = value.type.tensor_type.shape.dim
        for axis, dim in enumerate(dims):
            dynamic = not dim.HasField('dim_value') or dim.dim_value <= 0
            if axis == VIEW_AXIS and not dynamic:
                problems.append(f'{value.name}: axis {VIEW_AXIS} (views) is fixed to '
                                f'{dim.dim_value}; it must be the dynamic view axis')
            elif axis != VIEW_AXIS and dynamic:
                problems.append(f'{value.name}: axis {axis} is dynamic '
                                f'({dim.dim_param or "unknown"}); only axis {VIEW_AXIS} may be')
        if len(dims) <= VIEW_AXIS:
            problems.append(f'{value.name}: rank {len(dims)} has no view axis')
    return problems


def lint_model(model, infer_shapes: bool = True) -> list[str]:
    """Problems of an onnx ModelProto for TensorRT 10 (see the module doc); [] when clean.

    infer_shapes: run ONNX shape inference first, so intermediate DOUBLE tensors are seen
    """
    import onnx

    if infer_shapes:
        try:
            model = onnx.shape_inference.infer_shapes(model)
        except Exception:     # noqa: BLE001 - inference is a bonus; the node rules still run
            pass
    graph = model.graph
    problems = _lint_opset(model) + _lint_nodes(graph) + _lint_types(graph) + _lint_io(graph)
    for node in graph.node:
        if any(a.type in (a.GRAPH, a.GRAPHS) for a in node.attribute):
            problems.append(f'{_where(node)}: has a subgraph')
    return problems


def lint_file(path: str | os.PathLike) -> list[str]:
    """lint_model of an ONNX file (external data is not loaded: only the graph is checked)."""
    import onnx

    return lint_model(onnx.load(str(path), load_external_data=False))


def check_file(path: str | os.PathLike) -> None:
    """CheckpointError listing the problems of an ONNX file for TensorRT 10 (first 10)."""
    problems = lint_file(path)
    if problems:
        more = f' (+{len(problems) - 10} more)' if len(problems) > 10 else ''
        raise CheckpointError(f'{Path(path).name} is not buildable by TensorRT 10 without '
                              f'plugins: ' + '; '.join(problems[:10]) + more)
