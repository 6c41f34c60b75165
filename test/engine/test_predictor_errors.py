"""Bad input to the Predictor raises a clear error before any work, and the Predictor stays
usable afterwards."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from da3_ros.engine.predictor import Predictor
from da3_ros.engine.torch_backend import TorchBackend
from da3_ros.errors import CheckpointError, ConfigError, InputError
from da3_ros.model import build

IMG = np.zeros((60, 100, 3), np.uint8)
K = np.array([[80.0, 0, 50], [0, 80, 30], [0, 0, 1]])


@pytest.fixture(scope='module')
def predictor():
    torch.manual_seed(0)
    return Predictor(TorchBackend(build('da3-small')), process_res=56)


@pytest.mark.parametrize('images, match', [
    ([], 'non-empty'),
    (IMG, 'non-empty list'),
    ([IMG.astype(np.float32)], 'uint8'),
    ([np.zeros((60, 100, 2), np.uint8)], r'\(H, W, 3\) RGB, \(H, W, 4\) RGBA or \(H, W\) '
                                         r'grayscale.*convert it first'),
    ([np.zeros((3, 60, 100), np.uint8)], r'np.moveaxis'),
    ([IMG.astype(np.float32) / 255], r'np.clip\(img \* 255'),
    ([np.zeros((13, 100, 3), np.uint8)], 'smaller than one 14 px network patch'),
    ([IMG, np.zeros((60, 10, 3), np.uint8)], 'smaller than one 14 px network patch'),
    (torch.zeros(2, 60, 100, 2, dtype=torch.uint8), r'\(S, H, W, 3\)'),
    ([np.zeros((0, 100, 3), np.uint8)], 'zero-size'),
    ([IMG, 'image.png'], 'view 1'),
    ([torch.zeros(60, 100, 3)], 'uint8'),
])
def test_bad_images(predictor, images, match):
    with pytest.raises(InputError, match=match):
        predictor.predict(images)


def test_grey_and_rgba_arrays_are_converted(predictor):
    """As the official API (PIL .convert('RGB')): grey is repeated, alpha is dropped."""
    rgb = np.random.default_rng(1).integers(0, 256, (60, 100, 3), dtype=np.uint8)
    grey = rgb[..., 0].copy()
    rgba = np.concatenate([rgb, np.zeros((60, 100, 1), np.uint8)], axis=2)
    want_rgba = predictor.predict([rgb]).depth
    want_grey = predictor.predict([np.repeat(grey[..., None], 3, axis=2)]).depth
    np.testing.assert_array_equal(predictor.predict([rgba]).depth, want_rgba)
    np.testing.assert_array_equal(predictor.predict([grey]).depth, want_grey)
    np.testing.assert_array_equal(predictor.predict([torch.from_numpy(grey)]).depth, want_grey)
    stacked = torch.from_numpy(np.repeat(grey[..., None], 3, axis=2))[None]   # torch path
    np.testing.assert_array_equal(predictor.predict(torch.from_numpy(grey)[None]).depth,
                                  predictor.predict(stacked).depth)


def nan_K():
    bad = K.copy()
    bad[0, 2] = np.nan
    return bad[None]


@pytest.mark.parametrize('kwargs, match', [
    (dict(intrinsics=np.stack([K, K])), r'\(1, 3, 3\) for 1 images'),
    (dict(intrinsics=nan_K()), 'NaN or inf'),
    (dict(intrinsics=np.array([[[0.0, 0, 50], [0, 80, 30], [0, 0, 1]]])), 'focal'),
    (dict(intrinsics=[['a']]), 'numeric'),
    (dict(extrinsics=np.eye(4)[None]), 'need intrinsics'),
    (dict(intrinsics=K[None], extrinsics=np.full((1, 4, 4), np.inf)), 'NaN or inf'),
    (dict(intrinsics=K[None], extrinsics=np.ones((1, 4, 4))), 'last row'),
])
def test_bad_cameras(predictor, kwargs, match):
    with pytest.raises(InputError, match=match):
        predictor.predict([IMG], **kwargs)


def test_still_usable_after_errors(predictor):
    with pytest.raises(InputError):
        predictor.predict([])
    pred = predictor.predict([IMG, IMG], intrinsics=np.stack([K, K]))
    assert pred.depth.shape == (2, 28, 56) and np.isfinite(pred.depth).all()


@pytest.mark.parametrize('kwargs', [
    dict(process_res=13), dict(process_res='504'), dict(method='fit'),
    dict(ref_view_strategy='best'),
])
def test_bad_configuration(predictor, kwargs):
    with pytest.raises(ConfigError):
        Predictor(predictor.backend, **kwargs)


def test_bad_backend_arguments(tmp_path):
    with pytest.raises(ConfigError, match='backend'):
        Predictor('torch')
    with pytest.raises(ConfigError, match='unknown DA3 variant'):
        build('da3-tiny')
    with pytest.raises(CheckpointError):
        TorchBackend.from_pretrained(tmp_path / 'no-such-folder')
    with pytest.raises(ConfigError, match='precision'):
        TorchBackend(build('da3-small'), precision='int8')
    with pytest.raises(ConfigError, match='device'):
        TorchBackend(build('da3-small'), device='tpu')
    with pytest.raises(ConfigError, match='compile needs a CUDA device and precision bf16'):
        TorchBackend(build('da3-small'), device='cpu', precision='bf16', compile=True)
    with pytest.raises(ConfigError, match='compile is for the torch backend'):
        from da3_ros.engine.factory import make_predictor
        make_predictor('da3-small', 'onnxruntime', model_file=tmp_path / 'x.onnx', compile=True)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='CUDA is not available'):
            TorchBackend(build('da3-small'), device='cuda')


def test_factory_builds_each_backend_or_says_why(tmp_path):
    from da3_ros.engine.factory import make_predictor
    from da3_ros.engine.onnx_export import export_onnx
    from da3_ros.model.checkpoint import save
    net = build('da3-small').eval()
    save(net, tmp_path / 'ckpt')
    torch_predictor = make_predictor(tmp_path / 'ckpt', process_res=56)
    assert torch_predictor.backend.name == 'torch'
    export_onnx(net, tmp_path / 's.onnx', 28, 56)
    ort = make_predictor('depth-anything/DA3-SMALL', 'onnxruntime', model_file=tmp_path / 's.onnx',
                         process_res=56)
    a, b = ort.predict([IMG]), torch_predictor.predict([IMG])
    assert np.abs(a.depth - b.depth).max() <= 1e-3 * np.abs(b.depth).max()
    with pytest.raises(CheckpointError, match='da3-base'):
        make_predictor('da3-base', 'onnxruntime', model_file=tmp_path / 's.onnx')
    with pytest.raises(ConfigError, match='backend must be'):
        make_predictor('da3-small', 'openvino')
    with pytest.raises(ConfigError, match='model_file'):
        make_predictor('da3-small', 'tensorrt')
    with pytest.raises(CheckpointError, match='sidecar|missing'):
        make_predictor('da3-small', 'tensorrt', model_file=tmp_path / 'none.engine')
