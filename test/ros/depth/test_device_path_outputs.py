"""The depth node's device path (engine.device_outputs + ros.depth.outputs_device) gives the
messages of the host path (ros.depth.outputs.build_outputs), run here on CPU tensors: the
same torch code the node runs on CUDA."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from std_msgs.msg import Header

from da3_ros.engine.device_outputs import DeviceOutputs
from da3_ros.engine.prediction import TensorPrediction, ViewGeometry
from da3_ros.engine.predictor import Predictor
from da3_ros.engine.torch_backend import TorchBackend
from da3_ros.errors import ConfigError, InputError
from da3_ros.geometry.points import CloudConfig
from da3_ros.model import build
from da3_ros.ros.depth.outputs import CameraInput, Frames, OutputOptions, build_outputs
from da3_ros.ros.depth.outputs_device import build_outputs_on_device, output_differences
from da3_ros.ros.depth.pipeline import DepthPipeline
from da3_ros.ros.pointcloud import cloud_to_points

ALL = frozenset({'depth', 'confidence', 'camera_info', 'cloud', 'fused_cloud', 'rig_depth',
                 'tf', 'colorized_depth'})
H_IN, W_IN, H, W = 45, 80, 28, 42


def rigid(rng) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    T = np.eye(4)
    T[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                 [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                 [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    T[:3, 3] = rng.normal(size=3) * 5
    return T


def scene(seed: int, S: int = 3, with_conf: bool = True, with_sky: bool = False):
    """A TensorPrediction on the CPU (depth with NaN / negative pixels), its input images."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 40.0, (S, H, W)).astype(np.float32)
    depth[:, 0, :4] = np.nan
    depth[:, 1, :3] = -2.0
    conf = rng.uniform(1.0, 6.0, (S, H, W)).astype(np.float32)
    sky = rng.random((S, H, W)) < 0.15
    K = np.stack([[[30.0 + v, 0.3 * v, 20.7], [0.0, 29.0, 13.2], [0.0, 0.0, 1.0]]
                  for v in range(S)])
    view = ViewGeometry((H_IN, W_IN), (H, W), (W / W_IN, H / H_IN), (0.0, 0.0))
    pred = TensorPrediction(torch.from_numpy(depth),
                            torch.from_numpy(conf) if with_conf else None,
                            np.stack([rigid(rng) for _ in range(S)]), K, (view,) * S,
                            torch.from_numpy(sky) if with_sky else None, is_metric=True,
                            depth_scale=np.full(S, 0.5))
    images = [rng.integers(0, 256, (H_IN, W_IN, 3), dtype=np.uint8) for _ in range(S)]
    inputs = [CameraInput(f'c{v}', Header(frame_id=f'cam{v}'), img)
              for v, img in enumerate(images)]
    frames = Frames('map', rigid(rng), 'odom', rigid(rng), True)
    return pred, inputs, frames


def assert_same_cloud(got, want):
    assert [f.name for f in got.fields] == [f.name for f in want.fields]
    assert (got.width, got.point_step, got.header.frame_id) == (want.width, want.point_step,
                                                                want.header.frame_id)
    assert got.width > 100
    a, b = cloud_to_points(got), cloud_to_points(want)
    np.testing.assert_allclose(a.xyz, b.xyz, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    if b.confidence is not None:
        np.testing.assert_array_equal(a.confidence, b.confidence)


def assert_same_outputs(got, want):
    for g, w in zip(got.cameras, want.cameras, strict=True):
        for name in ('depth', 'confidence', 'camera_info', 'colorized_depth'):
            assert getattr(g, name) == getattr(w, name), name    # identical messages
        assert (g.cloud is None) == (w.cloud is None)
        if w.cloud is not None:
            assert_same_cloud(g.cloud, w.cloud)
    assert (got.fused_cloud is None) == (want.fused_cloud is None)
    if want.fused_cloud is not None:
        assert_same_cloud(got.fused_cloud, want.fused_cloud)
    assert got.transforms == want.transforms
    assert got.rig_depth == want.rig_depth


@pytest.mark.parametrize('cloud, fused_voxel, with_conf, with_sky', [
    (CloudConfig(), 0.0, True, False),
    (CloudConfig(min_confidence=2.5, min_range_m=1.0, max_range_m=30.0, stride=2), 0.0,
     True, True),
    (CloudConfig(stride=3), 2.0, False, True),       # METRIC-like: no confidence, sky
])
def test_device_path_gives_the_host_path_messages(cloud, fused_voxel, with_conf, with_sky):
    pred, inputs, frames = scene(1, with_conf=with_conf, with_sky=with_sky)
    opts = OutputOptions(ALL, 'network', cloud, True, fused_voxel, '_da3', 'm')
    want = build_outputs(pred.numpy(), inputs, 123, frames, opts)
    device = DeviceOutputs('cpu')
    images = device.upload([c.rgb for c in inputs])
    got = build_outputs_on_device(pred, images, inputs, 123, frames, opts, device)
    assert_same_outputs(got, want)
    if with_sky:   # the sky really was removed: fewer points than without removal
        keep_sky = OutputOptions(ALL, 'network', cloud, False, fused_voxel, '_da3', 'm')
        more = build_outputs_on_device(pred, images, inputs, 123, frames, keep_sky, device)
        assert more.cameras[0].cloud.width > got.cameras[0].cloud.width


def test_device_download_slots_and_fixed_frame():
    """Records per view are the kept pixels in row-major order; fixed-frame records are the
    same points moved by T_fixed_cam."""
    pred, inputs, _ = scene(2)
    device = DeviceOutputs('cpu')
    images = device.upload([c.rgb for c in inputs])
    T = np.stack([rigid(np.random.default_rng(v)) for v in range(3)])
    host = device.download(pred, images, CloudConfig(), T_fixed_cams=T)
    for v in range(3):
        d = pred.depth[v].numpy()
        assert len(host.clouds[v]) == np.count_nonzero(np.isfinite(d) & (d > 0))
        moved = host.clouds[v][:, :3].astype(np.float64) @ T[v, :3, :3].T + T[v, :3, 3]
        np.testing.assert_allclose(host.fixed_clouds[v][:, :3], moved, rtol=1e-6, atol=1e-5)
        np.testing.assert_array_equal(host.fixed_clouds[v][:, 3:], host.clouds[v][:, 3:])
    np.testing.assert_array_equal(host.depth, pred.depth.numpy())
    only_images = device.download(pred, images, CloudConfig(), clouds=False)
    assert only_images.clouds == () and only_images.confidence.shape == (3, H, W)
    with pytest.raises(InputError, match='one size'):
        device.upload([inputs[0].rgb, inputs[1].rgb[:, :40]])
    with pytest.raises(InputError, match='voxel'):
        device.download(pred, images, CloudConfig(voxel_size_m=0.5))


@pytest.fixture(scope='module')
def small_predictor():
    torch.manual_seed(0)
    return Predictor(TorchBackend(build('da3-small')), process_res=84, gpu_preprocess=True)


def test_pipeline_device_path_equals_host_path(small_predictor):
    """The node's pipeline with the network: uint8 set -> messages, device path (forced on,
    CPU tensors) vs host path, the same torch preprocessing on both."""
    _, inputs, frames = scene(3)
    opts = OutputOptions(ALL, 'network', CloudConfig(min_confidence=1.2), True, 0.0, '_da3',
                         'da3-small')
    host = DepthPipeline(small_predictor, opts)
    assert not host.on_device                 # a CPU backend takes the host path by default
    device = DepthPipeline(small_predictor, opts, on_device=True, check_device=True)
    stages = {}
    got = device.run(inputs, None, None, 5, frames, stages.__setitem__)
    assert set(stages) == {'upload', 'network', 'packing', 'messages'}   # no GPU on CPU
    assert all(seconds >= 0 for seconds in stages.values())
    assert_same_outputs(got, host.run(inputs, None, None, 5, frames))
    assert device.device_check == []            # the first set was checked, and agreed
    with pytest.raises(ConfigError, match='network'):
        DepthPipeline(small_predictor, OutputOptions(ALL, 'input'), on_device=True)


def test_output_differences_names_what_differs():
    """The node's one-set self-check finds each kind of disagreement and passes equal ones."""
    pred, inputs, frames = scene(4)
    opts = OutputOptions(ALL, 'network', CloudConfig(), True, 0.0, '_da3', 'm')
    want = build_outputs(pred.numpy(), inputs, 7, frames, opts)
    assert output_differences(build_outputs(pred.numpy(), inputs, 7, frames, opts), want) == []
    shifted = pred.numpy()
    shifted.depth[1] *= 1.001                      # one camera's depth off by 0.1 %
    got = build_outputs(shifted, inputs, 7, frames, opts)
    problems = output_differences(got, want)
    assert 'camera 1 depth differs' in problems
    assert any(p.startswith('camera 1 cloud: xyz differ') for p in problems)
    assert any(p.startswith('fused cloud') for p in problems)
    assert not any(p.startswith('camera 0') for p in problems)
    assert 'rig_depth differs' in problems
