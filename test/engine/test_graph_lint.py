"""graph_lint: the TensorRT 10 rules on hand-made graphs, on today's exports (clean) and on the
export as it was before the position encodings became trace-time constants (not clean)."""
from __future__ import annotations

import pytest
import torch

from da3_ros.engine import graph_lint
from da3_ros.engine.onnx_export import export_onnx
from da3_ros.errors import CheckpointError
from da3_ros.model import build, positional

onnx = pytest.importorskip('onnx')
from onnx import TensorProto, helper  # noqa: E402

H, W = 70, 126


def graph(nodes, inits=(), opset=18, in_shape=(1, 'views', 4), out_shape=(1, 'views', 4),
          outputs=('y',)):
    vin = [helper.make_tensor_value_info('x', TensorProto.FLOAT, list(in_shape))]
    vout = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(out_shape))
            for n in outputs]
    return helper.make_model(helper.make_graph(nodes, 'g', vin, vout, list(inits)),
                             opset_imports=[helper.make_opsetid('', opset)])


def test_a_plain_graph_is_clean():
    axes = helper.make_tensor('axes', TensorProto.INT64, [1], [2])
    nodes = [helper.make_node('ReduceSum', ['x', 'axes'], ['s'], keepdims=1),
             helper.make_node('Add', ['x', 's'], ['y'])]
    assert graph_lint.lint_model(graph(nodes, [axes])) == []


def test_every_rule_fires_on_a_bad_graph():
    idx = helper.make_tensor('idx', TensorProto.INT64, [1, 1, 4], [0, 1, 2, 3])
    dbl = helper.make_tensor('dbl', TensorProto.DOUBLE, [4], [1.0, 2.0, 3.0, 4.0])
    branch = helper.make_graph([helper.make_node('Identity', ['x'], ['b'])], 'b', [],
                               [helper.make_tensor_value_info('b', TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node('ScatterElements', ['x', 'idx', 'x'], ['s1'], axis=2,
                         reduction='add'),
        helper.make_node('Cast', ['dbl'], ['d1'], to=TensorProto.DOUBLE),
        helper.make_node('Einsum', ['x', 'x', 'x'], ['e'], equation='abc,abc,abc->abc'),
        helper.make_node('NonZero', ['x'], ['nz']),
        helper.make_node('Shape', ['x'], ['cond_shape']),
        helper.make_node('If', ['cond'], ['if_out'], then_branch=branch, else_branch=branch),
        helper.make_node('Resize', ['x', '', 'scales'], ['r'], mode='cubic'),
        helper.make_node('Shape', ['x'], ['dyn_axes']),
        helper.make_node('Unsqueeze', ['x', 'dyn_axes'], ['u']),
        helper.make_node('MyPlugin', ['x'], ['p'], domain='com.example'),
        helper.make_node('Identity', ['x'], ['y']),
    ]
    model = graph(nodes, [idx, dbl], opset=21, in_shape=(1, 'views', 'H'),
                  out_shape=(1, 3, 4))
    problems = '\n'.join(graph_lint.lint_model(model))
    for expected in ["reduction='add'", 'casts to DOUBLE', 'initializer dbl: DOUBLE',
                     'Einsum', 'NonZero', 'If', 'has a subgraph', "mode='cubic'",
                     "axes input 'dyn_axes' is not a constant", "domain 'com.example'",
                     'opset 21 is outside 9..20', 'x: axis 2 is dynamic (H)',
                     'y: axis 1 (views) is fixed to 3']:
        assert expected in problems, expected


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return build('da3-small').eval().requires_grad_(False)


@pytest.mark.parametrize('cameras', [False, True], ids=['plain', 'cameras'])
def test_small_exports_are_clean(net, tmp_path, cameras):
    path = export_onnx(net, tmp_path / 'small.onnx', H, W, with_cameras=cameras)
    assert graph_lint.lint_file(path) == []
    graph_lint.check_file(path)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert not ops & {'ScatterElements', 'ScatterND', 'Einsum'}


def test_the_export_before_trace_constants_fails(net, tmp_path, monkeypatch):
    """What every export held until the position encodings were trace-time constants."""
    from da3_ros.model import backbone, heads

    for module, name in ((backbone, 'resize_pos_embed'), (backbone, 'rope_tables'),
                         (heads, 'uv_embed')):
        monkeypatch.setattr(module, name, getattr(positional, name).__wrapped__)
    path = export_onnx(net, tmp_path / 'old.onnx', H, W)
    problems = '\n'.join(graph_lint.lint_file(path))
    assert "ScatterElements" in problems and "reduction='add'" in problems
    assert 'DOUBLE' in problems and 'Einsum' in problems and 'ScatterND' in problems
    with pytest.raises(CheckpointError, match='not buildable by TensorRT 10'):
        graph_lint.check_file(path)


def test_allowed_ops_exclude_what_tensorrt_needs_plugins_or_control_flow_for():
    assert not graph_lint.ALLOWED_OPS & {'ScatterElements', 'ScatterND', 'If', 'Loop', 'Scan',
                                         'NonZero', 'Einsum'}
    assert graph_lint.MAX_OPSET >= 18      # the exports' opset
