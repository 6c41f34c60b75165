"""Same Predictor, two backends: PyTorch eager and ONNX Runtime (CPU), on real images.

Exported graphs use reference view 'first', so the torch side is asked for 'first' too; a
camera-conditioned export takes the host-computed pose encoding. Tolerance 1e-3 relative
(fp32 both sides; measured values are printed).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from da3_ros.engine.onnx_backend import OnnxBackend
from da3_ros.engine.onnx_export import export_onnx
from da3_ros.engine.predictor import Predictor
from da3_ros.engine.torch_backend import TorchBackend
from da3_ros.errors import CheckpointError, ConfigError
from da3_ros.model import build
from official_nets import build_pair
from random_weights import randomize_

pytest.importorskip('onnxruntime')

NUSCENES = Path('/work/shared/data/nuscenes_mini_6cam_sample')
RES = 140           # 1600x900 -> 84x140
HW = (84, 140)
TOL = 1e-3


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.fixture(scope='module')
def rig():
    if not NUSCENES.exists():
        pytest.skip(f'{NUSCENES} not available')
    cal = json.loads((NUSCENES / 'calibration.json').read_text())['cameras'].values()
    images = [np.asarray(Image.open(NUSCENES / c['file']).convert('RGB')) for c in cal]
    K = np.stack([np.asarray(c['cam2img'])[:3, :3] for c in cal])
    T = np.stack([np.linalg.inv(np.asarray(c['cam2ego'])) for c in cal])
    return images, K, T


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    """DA3-SMALL exported twice from one set of weights: plain and camera-conditioned."""
    net = randomize_(build('da3-small').eval().requires_grad_(False), seed=3)
    folder = tmp_path_factory.mktemp('agree')
    plain = export_onnx(net, folder / 'small.onnx', *HW)
    cams = export_onnx(net, folder / 'small_cams.onnx', *HW, with_cameras=True)
    return net, plain, cams


def compare(a, b) -> dict[str, float]:
    errors = {'depth': rel(a.depth, b.depth)}
    if b.confidence is not None:
        errors['conf'] = rel(a.confidence, b.confidence)
    if b.T_cam_world is not None:
        errors['extrinsics'] = rel(a.T_cam_world, b.T_cam_world)
    if b.K is not None:
        errors['fx'] = rel(a.K[:, 0, 0], b.K[:, 0, 0])
    return errors


@pytest.mark.parametrize('views', [1, 2, 5])
def test_torch_and_onnxruntime_agree(small, rig, views):
    net, plain, _ = small
    images = rig[0][:views]
    eager = Predictor(TorchBackend(net), RES, ref_view_strategy='first').predict(images)
    graph = Predictor(OnnxBackend(plain, expect_model='da3-small'), RES).predict(images)
    errors = compare(graph, eager)
    print(f'S={views}', {k: f'{v:.1e}' for k, v in errors.items()})
    assert max(errors.values()) <= TOL, errors
    assert graph.views == eager.views


def test_camera_conditioned_graph_agrees(small, rig):
    """Six calibrated nuScenes cameras through the export with a pose_enc input: same depth
    in the rig's metres as eager (alignment to the given extrinsics included)."""
    net, _, cams = small
    images, K, T = rig
    eager = Predictor(TorchBackend(net), RES).predict(images, K, T)
    graph = Predictor(OnnxBackend(cams), RES).predict(images, K, T)
    errors = compare(graph, eager)
    print('rig', {k: f'{v:.1e}' for k, v in errors.items()})
    assert max(errors.values()) <= TOL, errors
    assert graph.is_metric and np.allclose(graph.T_cam_world, T)
    unconditioned = Predictor(TorchBackend(net), RES).predict(images)
    assert rel(unconditioned.depth, eager.depth) > 10 * TOL, 'the cameras must matter'


def test_metric_graph_agrees_with_host_sky_fill(rig, tmp_path):
    """DA3METRIC (5-block backbone): the graph stops before the sky fill, the backend applies
    it on the host with the same random draws; metres from the given focal."""
    _, net = build_pair('da3metric-large', {'model': 'vitl_mono'})
    randomize_(net, seed=4)
    path = export_onnx(net.eval(), tmp_path / 'metric.onnx', *HW)
    image, K = rig[0][:2], rig[1][:2]
    torch.manual_seed(0)
    eager = Predictor(TorchBackend(net), RES).predict(image, K)
    torch.manual_seed(0)
    graph = Predictor(OnnxBackend(path), RES).predict(image, K)
    assert rel(graph.depth, eager.depth) <= TOL
    assert np.array_equal(graph.sky, eager.sky) and graph.is_metric


def test_graph_limits_are_clear_errors(small, rig):
    net, plain, cams = small
    images, K, T = rig
    backend = OnnxBackend(plain)
    with pytest.raises(ConfigError, match='saddle_balanced'):
        Predictor(backend, RES, ref_view_strategy='saddle_balanced')
    with pytest.raises(ConfigError, match='use_ray_pose'):
        Predictor(backend, RES, use_ray_pose=True)
    with pytest.raises(ConfigError, match='84x140'):
        Predictor(backend, 504).predict(images[:1])
    with pytest.raises(ConfigError, match='without camera input'):
        Predictor(backend, RES).predict(images, K, T)
    with pytest.raises(CheckpointError, match='da3-base'):
        OnnxBackend(plain, expect_model='da3-base')
    with pytest.raises(CheckpointError, match='does not exist'):
        OnnxBackend(plain.parent / 'missing.onnx')
    with pytest.raises(ConfigError, match='camera'):
        export_onnx(build_pair('da3metric-large', {'model': 'vitl_mono'})[1], plain.parent /
                    'x.onnx', *HW, with_cameras=True)
