"""Place descriptors from DA3's own backbone tokens (loop retrieval without an extra network)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from da3_ros.engine.onnx_backend import OnnxBackend
from da3_ros.engine.onnx_export import export_onnx
from da3_ros.engine.predictor import Predictor
from da3_ros.engine.preprocess import preprocess
from da3_ros.engine.torch_backend import TorchBackend
from da3_ros.errors import ConfigError
from da3_ros.model import build
from da3_ros.slam.descriptors import pool_global_descriptor
from da3_ros.slam.protocol import Frame, PredictorChunkAdapter
from random_weights import randomize_


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return randomize_(build('da3-small').eval().requires_grad_(False), seed=6)


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (60, 100, 3), dtype=np.uint8) for _ in range(n)]


def test_descriptor_is_the_pooled_last_layer_tokens(net):
    """Equal to the SLAM pooling function applied to the backbone's last output tokens,
    taken from the backbone directly."""
    imgs = images(3)
    x = preprocess(imgs, 56).images
    with torch.no_grad():
        out = net(x, ref_view_strategy='first', return_descriptor=True)
        tokens = net.backbone(x, None, 'first').features[-1][0].numpy()
    want = pool_global_descriptor(tokens)
    assert out.descriptor.shape == (1, 3, 2 * 384)
    assert np.allclose(out.descriptor[0].numpy(), want, atol=1e-6)
    assert net(x, ref_view_strategy='first').descriptor is None


def test_predictor_and_chunk_adapter_use_one_forward(net, monkeypatch):
    predictor = Predictor(TorchBackend(net), 56, ref_view_strategy='first',
                          return_descriptors=True)
    frames = [Frame(i, 0.1 * i, tuple(images(2, seed=i))) for i in range(3)]
    calls = []
    original = predictor.backend.infer
    monkeypatch.setattr(predictor.backend, 'infer',
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    chunk = PredictorChunkAdapter(predictor).predict_chunk(frames)
    assert len(calls) == 1
    assert chunk.descriptors.shape == (6, 768)
    assert np.allclose(np.linalg.norm(chunk.descriptors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(chunk.descriptors, chunk.prediction.descriptors)
    plain = Predictor(TorchBackend(net), 56, ref_view_strategy='first').predict(images(2))
    assert plain.descriptors is None


def test_graph_backends_refuse_descriptors(net, tmp_path):
    path = export_onnx(net, tmp_path / 's.onnx', 28, 56)
    with pytest.raises(ConfigError, match='descriptors'):
        Predictor(OnnxBackend(path), 56, return_descriptors=True)
