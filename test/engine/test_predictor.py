"""Predictor (torch backend) against the official `DepthAnything3.inference` on random weights.

The official API object wraps the official network with the same randomised state dict as
ours; its forward runs in fp32 (official_api.official_api). Everything else compared here is
the official code path: preprocessing, extrinsics normalisation, output processing (sky >= 0.5),
Umeyama alignment to given extrinsics (RANSAC from 10 views, seed 42).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from da3_ros.engine.pose_alignment import camera_centres
from da3_ros.engine.predictor import Predictor
from da3_ros.engine.torch_backend import TorchBackend
from official_api import official_api, official_preprocess
from official_nets import build_pair
from random_weights import randomize_

DATA = Path('/work/shared/data')
NUSCENES = DATA / 'nuscenes_mini_6cam_sample'
SOH = sorted((DATA / 'da3_examples/SOH').glob('*.png'))
RES = 140          # process_res: keeps every forward fast on 2 CPU cores
TOL = 1e-4         # max |ours - official| / max |official|, fp32 on both sides


def rel(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))


@functools.cache
def rig():
    """The nuScenes 6-camera rig: RGB images, K (6,3,3), T_cam_ego (6,4,4)."""
    if not NUSCENES.exists():
        pytest.skip(f'{NUSCENES} not available')
    cal = json.loads((NUSCENES / 'calibration.json').read_text())['cameras']
    images, K, T = [], [], []
    for cam in cal.values():
        images.append(np.asarray(Image.open(NUSCENES / cam['file']).convert('RGB')))
        K.append(np.asarray(cam['cam2img'], np.float64)[:3, :3])
        T.append(np.linalg.inv(np.asarray(cam['cam2ego'], np.float64)))
    return images, np.stack(K), np.stack(T)


def soh(i: int) -> np.ndarray:
    if len(SOH) <= i:
        pytest.skip('da3_examples/SOH not available')
    return np.asarray(Image.open(SOH[i]).convert('RGB'))


def pair_for(name: str, shrink=None, seed=0):
    official, ours = build_pair(name, shrink)
    randomize_(official, seed=seed)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official_api(official, name), ours


@pytest.fixture(scope='module')
def small():
    api, net = pair_for('da3-small')
    return api, Predictor(TorchBackend(net), process_res=RES)


def official(api, images, seed=0, **kwargs):
    torch.manual_seed(seed)
    return api.inference(images, process_res=RES, **kwargs)


def ours(predictor, images, seed=0, **kwargs):
    torch.manual_seed(seed)
    return predictor.predict(images, **kwargs)


def assert_anyview_match(got, want, tol=TOL):
    errors = {'depth': rel(got.depth, want.depth), 'conf': rel(got.confidence, want.conf),
              'extrinsics': rel(got.T_cam_world[:, :3], want.extrinsics),
              'fx': rel(got.K[:, 0, 0], want.intrinsics[:, 0, 0]),
              'K': rel(got.K, want.intrinsics)}
    assert max(errors.values()) <= tol, errors
    return errors


@pytest.mark.parametrize('views', [1, 3])
def test_uncalibrated_matches_official(small, views):
    """Views of different sizes (nuScenes 1600x900, SOH) go through the common centre crop; at
    3 views the official saddle_balanced reference selection runs."""
    api, predictor = small
    images = [rig()[0][0], soh(0), rig()[0][3]][:views]
    got, want = ours(predictor, images), official(api, images)
    assert_anyview_match(got, want)
    assert not got.is_metric and got.sky is None
    assert np.allclose(got.depth_scale, 1.0)
    assert got.views[0].network_hw == want.depth.shape[1:]


def test_rig_conditioned_and_aligned_matches_official(small):
    """nuScenes 6-camera rig with its calibration: camera-conditioned forward, Umeyama scale,
    depth in the rig's metres, the given extrinsics and the preprocessed K returned."""
    api, predictor = small
    images, K, T = rig()
    got = ours(predictor, images, intrinsics=K, extrinsics=T)
    want = official(api, images, intrinsics=K.astype(np.float32),
                    extrinsics=T.astype(np.float32))
    assert_anyview_match(got, want)
    assert got.is_metric
    assert np.allclose(got.T_cam_world, T)
    _, K_official = official_preprocess(images, K.astype(np.float32), RES)
    assert rel(got.K, K_official) <= 1e-6


def test_ransac_alignment_matches_official(small):
    """10 views: the official RANSAC (seed 42, half-size subsets) picks the same scale."""
    api, predictor = small
    rng = np.random.default_rng(3)
    base = rig()[0][0]
    images = [np.ascontiguousarray(base[i * 20:i * 20 + 600, i * 60:i * 60 + 1000])
              for i in range(10)]
    K = np.array([[500.0, 0, 500], [0, 500, 300], [0, 0, 1]])[None].repeat(10, 0)
    T = np.eye(4)[None].repeat(10, 0)
    T[:, :3, 3] = rng.normal(0, 2.0, (10, 3))
    got = ours(predictor, images, intrinsics=K, extrinsics=T)
    want = official(api, images, intrinsics=K.astype(np.float32),
                    extrinsics=T.astype(np.float32))
    assert rel(got.depth, want.depth) <= TOL


def test_two_views_use_the_baseline_ratio(small, monkeypatch):
    """S = 2 makes the official Umeyama raise; ours scales depth by the ratio of the given
    baseline to the predicted one (the scale of every similarity between the two pairs)."""
    api, predictor = small
    images = [rig()[0][0], rig()[0][1]]
    K, T = rig()[1][:2], rig()[2][:2]
    got = ours(predictor, images, intrinsics=K, extrinsics=T)
    # The official prediction before its (failing) alignment step:
    monkeypatch.setattr(type(api), '_align_to_input_extrinsics_intrinsics',
                        lambda self, ext, ixt, pred, *a, **k: pred)
    raw = official(api, images, intrinsics=K.astype(np.float32),
                   extrinsics=T.astype(np.float32))
    c_pred = camera_centres(np.concatenate([raw.extrinsics, np.tile([[[0, 0, 0, 1.0]]],
                                                                    (2, 1, 1))], 1))
    s = np.linalg.norm(c_pred[1] - c_pred[0]) / np.linalg.norm(
        camera_centres(T)[1] - camera_centres(T)[0])
    assert rel(got.depth, raw.depth / s) <= TOL
    assert got.depth_scale == pytest.approx(1 / s, rel=1e-4)


def test_intrinsics_alone_keep_the_predicted_ones(small):
    """As the official API: any-view models are conditioned only with extrinsics + intrinsics;
    intrinsics alone change nothing."""
    api, predictor = small
    images, K, _ = rig()
    got = ours(predictor, images[:2], intrinsics=K[:2])
    assert_anyview_match(got, official(api, images[:2], intrinsics=K[:2].astype(np.float32)))


def test_metric_model_scales_by_focal_and_masks_sky():
    """DA3METRIC (5-block backbone): sky fill at 280x504 (141k pixels: the official random
    subsample, seeded), sky >= 0.5, and metres = depth * focal / 300 with the processed focal."""
    api, net = pair_for('da3metric-large', {'model': 'vitl_mono'}, seed=1)
    image = rig()[0][0]
    K = rig()[1][:1]
    predictor = Predictor(TorchBackend(net), process_res=504)
    torch.manual_seed(5)
    got = predictor.predict([image], intrinsics=K)
    torch.manual_seed(5)
    want = api.inference([image], process_res=504)
    _, K_net = official_preprocess([image], K.astype(np.float32), 504)
    focal = (K_net[0, 0, 0] + K_net[0, 1, 1]).item() / 2
    sky_px = int(want.sky.sum())
    assert 10 < sky_px < want.sky.size - 100_000, 'the subsampled sky-fill path must run'
    assert rel(got.depth, want.depth * focal / 300) <= TOL
    assert np.array_equal(got.sky, want.sky)
    assert got.is_metric and got.confidence is None and got.T_cam_world is None
    assert got.depth_scale[0] == pytest.approx(focal / 300)
    uncalibrated = predictor.predict([image])
    assert not uncalibrated.is_metric and uncalibrated.K is None


def test_nested_matches_official():
    """NESTED (8-block vitg + 5-block vitl): metric scale factor, sky fill, confidence 1 on sky."""
    api, net = pair_for('da3nested-giant-large', {'anyview': 'vitg', 'metric': 'vitl_mono'},
                        seed=2)
    predictor = Predictor(TorchBackend(net), process_res=RES)
    images = [rig()[0][0], rig()[0][5]]
    got, want = ours(predictor, images, seed=7), official(api, images, seed=7)
    assert_anyview_match(got, want)
    assert got.is_metric and bool(want.is_metric)
    assert got.depth_scale[0] == pytest.approx(float(want.scale_factor), rel=1e-4)


def test_depth_at_input_back_projects_consistently():
    """Depth resampled to the input resolution back-projects through K_input onto the same
    plane that produced the network-resolution depth through K (closed form)."""
    from da3_ros.engine.prediction import Prediction
    from da3_ros.engine.predictor import _view_geometry
    from da3_ros.engine.preprocess import preprocess
    image = rig()[0][0]
    pre = preprocess([image], 504, 'upper_bound_crop')
    view = _view_geometry(pre)[0]
    K_in = np.array([[1266.0, 0, 816.3], [0, 1266.0, 491.5], [0, 0, 1]])
    K_net = pre.scale_intrinsics(K_in[None])[0]
    normal, offset = np.array([0.05, -0.3, 1.0]), 10.0     # plane n . X = offset

    def plane_depth(K, h, w):
        u, v = np.meshgrid(np.arange(w), np.arange(h))
        rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T
        return (offset / (rays @ normal)).astype(np.float32)

    H, W = view.network_hw
    pred = Prediction(plane_depth(K_net, H, W)[None], None, None, K_net[None], (view,))
    assert np.allclose(pred.K_input(0), K_in)
    want = plane_depth(K_in, *image.shape[:2])
    got = pred.depth_at_input(0, linear=True)
    inside = np.isfinite(got)
    assert inside.mean() > 0.95      # 'crop' loses only a few rows/columns
    assert np.abs(got[inside] - want[inside]).max() / want.max() < 1e-3
    nearest = pred.depth_at_input(0)
    assert np.nanmax(np.abs(nearest - want) / want) < 0.01


def test_gpu_resident_preprocess_within_tolerance(small):
    """The torch-ops preprocessing (no host round trip) against the exact cv2 path, same
    network: depth within 1e-2 relative, poses within 1e-2 (measured on CPU: see the print)."""
    api, predictor = small
    images = rig()[0][:3]
    exact = predictor.predict(images)
    fast = Predictor(predictor.backend, process_res=RES, gpu_preprocess=True).predict(images)
    errors = {'depth': rel(fast.depth, exact.depth), 'conf': rel(fast.confidence,
                                                                 exact.confidence),
              'extrinsics': rel(fast.T_cam_world, exact.T_cam_world)}
    print('gpu_preprocess vs exact:', {k: f'{v:.1e}' for k, v in errors.items()})
    assert max(errors.values()) <= 1e-2, errors

