"""ONNX export backend against PyTorch eager: one file per model, any number of views."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from da3_ros.engine.graph_lint import lint_file
from da3_ros.engine.onnx_export import export_onnx
from da3_ros.engine.onnx_runtime import OnnxModel
from da3_ros.errors import CheckpointError, ConfigError, InputError
from da3_ros.model import build
from random_weights import randomize_

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

H, W = 70, 126          # 5 x 9 patches
TOL = 1e-3              # max |ort - torch| / max |torch|
ANYVIEW = ('depth', 'depth_conf', 'extrinsics', 'intrinsics')


def rel_err(got: np.ndarray, want: torch.Tensor) -> float:
    want = want.double().numpy()
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    """(net, path, export seconds) for DA3-SMALL at H x W, exported once."""
    torch.manual_seed(0)
    net = randomize_(build('da3-small').eval().requires_grad_(False), seed=0)
    start = time.perf_counter()
    path = export_onnx(net, tmp_path_factory.mktemp('onnx') / 'small.onnx', H, W)
    return net, path, time.perf_counter() - start


@pytest.fixture(scope='module')
def small_model(small):
    return OnnxModel(small[1])


@pytest.mark.parametrize('views', [1, 2, 5])
def test_anyview_matches_eager(small, small_model, views):
    net, path, seconds = small
    x = torch.randn(1, views, 3, H, W, generator=torch.Generator().manual_seed(views))
    got = small_model.run(x.numpy())
    assert tuple(got) == ANYVIEW
    with torch.no_grad():
        want = net(x, ref_view_strategy='first')
    errors = {key: rel_err(got[key], getattr(want, key)) for key in ANYVIEW}
    # random weights saturate fy (~3e7), which would hide fx in the intrinsics error
    errors['fx'] = rel_err(got['intrinsics'][..., 0, 0], want.intrinsics[..., 0, 0])
    print(f'S={views} export {seconds:.1f} s, {path.stat().st_size / 1e6:.1f} MB: '
          + ', '.join(f'{k} {e:.1e}' for k, e in errors.items()))
    assert max(errors.values()) <= TOL, errors


def test_metadata_is_written_and_checked(small, small_model):
    assert small_model.metadata['model'] == 'da3-small'
    assert (small_model.height, small_model.width) == (H, W)
    assert small_model.metadata['outputs'] == ','.join(ANYVIEW)
    assert small_model.metadata['opset'] == '18'
    OnnxModel(small[1], expect_model='da3-small', expect_hw=(H, W))
    with pytest.raises(CheckpointError, match='da3-base'):
        OnnxModel(small[1], expect_model='da3-base')
    with pytest.raises(CheckpointError, match='70x126'):
        small_model.check(expect_hw=(H, W + 14))


def test_missing_file_and_foreign_onnx_are_rejected(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    with pytest.raises(CheckpointError, match='does not exist'):
        OnnxModel(tmp_path / 'none.onnx')
    node = helper.make_node('Identity', ['images'], ['depth'])
    graph = helper.make_graph([node], 'g', [helper.make_tensor_value_info(
        'images', TensorProto.FLOAT, [1])], [helper.make_tensor_value_info(
            'depth', TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), tmp_path / 'foreign.onnx')
    with pytest.raises(CheckpointError, match='metadata'):
        OnnxModel(tmp_path / 'foreign.onnx')


def test_unavailable_provider_falls_back_to_cpu(small):
    model = OnnxModel(small[1], providers=['NoSuchExecutionProvider'])
    assert model.providers == ['CPUExecutionProvider']


@pytest.mark.parametrize('shape, dtype', [
    ((1, 2, 3, H, W + 14), np.float32),     # other resolution
    ((2, 2, 3, H, W), np.float32),          # batch is fixed to 1
    ((1, 0, 3, H, W), np.float32),          # no views
    ((1, 2, 1, H, W), np.float32),          # not RGB
    ((2, 3, H, W), np.float32),             # 4-D
    ((1, 2, 3, H, W), np.float64),          # dtype
])
def test_bad_inputs_raise_input_error(small_model, shape, dtype):
    with pytest.raises(InputError):
        small_model.run(np.zeros(shape, dtype))


def test_list_input_raises_input_error(small_model):
    with pytest.raises(InputError):
        small_model.run([[0.0]])


@pytest.mark.parametrize('kwargs', [
    dict(height=71, width=W), dict(height=H, width=0), dict(height=H, width=-14),
    dict(height=70.0, width=W), dict(height=H, width=W, opset=13),
    dict(height=H, width=W, max_views_hint=0),
])
def test_export_arguments_are_validated(small, tmp_path, kwargs):
    with pytest.raises(ConfigError):
        export_onnx(small[0], tmp_path / 'x.onnx', **kwargs)
    assert not list(tmp_path.iterdir())


def test_nested_is_refused(tmp_path):
    with torch.device('meta'):
        nested = build('da3nested-giant-large')
    with pytest.raises(ConfigError, match='NESTED'):
        export_onnx(nested, tmp_path / 'x.onnx', H, W)


def test_metric_depth_and_sky_match_eager(tmp_path):
    """Full-size METRIC-LARGE (334 M params, ~40 s here, a 1.3 GB file): the graph returns
    depth before sky fill and the sky score."""
    torch.manual_seed(1)
    net = randomize_(build('da3metric-large').eval().requires_grad_(False), seed=1)
    path = export_onnx(net, tmp_path / 'metric.onnx', H, W)
    model = OnnxModel(path, expect_model='da3metric-large', expect_hw=(H, W))
    assert lint_file(path) == []            # TensorRT 10 without plugins
    for views in (1, 3):
        x = torch.randn(1, views, 3, H, W, generator=torch.Generator().manual_seed(views))
        got = model.run(x.numpy())
        assert tuple(got) == ('depth', 'sky')
        with torch.no_grad():
            want = net(x)
        sky_err = rel_err(got['sky'], want.sky)
        # eager depth is sky-filled; the two agree where the sky score is below 0.3
        keep = want.sky < 0.3
        depth_err = rel_err(got['depth'][keep.numpy()], want.depth[keep])
        print(f'metric S={views}: depth {depth_err:.1e}, sky {sky_err:.1e}')
        assert max(sky_err, depth_err) <= TOL
