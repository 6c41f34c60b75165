"""Make the official DA3 preprocessing and API class importable in tests.

torchvision has no wheel that fits torch 2.13 CPU here, so a stand-in module with the three
transforms the official `InputProcessor` uses (ToTensor, Normalize, CenterCrop) is registered
under `torchvision.transforms`; it follows torchvision's own arithmetic. The official
`depth_anything_3.utils.export` pulls moviepy/pycolmap/trimesh and is replaced by a stub that
exposes `export()`; `imageio` (only used by the official code to write files) is an empty
module when it is not installed. Used only in tests, never by da3_ros itself.
"""
from __future__ import annotations

import functools
import sys
import types
import warnings

import numpy as np
import torch


class _ToTensor:
    """PIL RGB image or HxWxC uint8 array -> (C, H, W) float32 in [0, 1], as torchvision."""

    def __call__(self, pic):
        arr = np.array(pic, dtype=np.uint8, copy=True)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        img = torch.from_numpy(arr).permute((2, 0, 1)).contiguous()
        return img.to(dtype=torch.get_default_dtype()).div(255)


class _Normalize:
    """(x - mean) / std per channel on a (C, H, W) float tensor, as torchvision."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, tensor):
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype)[:, None, None]
        std = torch.as_tensor(self.std, dtype=tensor.dtype)[:, None, None]
        return tensor.sub(mean).div(std)


class _CenterCrop:
    """Centre crop of a (..., H, W) tensor; offsets int(round((H - h) / 2)), as torchvision."""

    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img):
        h, w = self.size
        H, W = img.shape[-2:]
        if h > H or w > W:
            raise NotImplementedError('padding is not needed by the official InputProcessor')
        top = int(round((H - h) / 2.0))
        left = int(round((W - w) / 2.0))
        return img[..., top:top + h, left:left + w]


def _install_shims() -> None:
    try:
        import torchvision.transforms  # noqa: F401
    except Exception:
        tv = types.ModuleType('torchvision')
        tf = types.ModuleType('torchvision.transforms')
        tf.ToTensor, tf.Normalize, tf.CenterCrop = _ToTensor, _Normalize, _CenterCrop
        tv.transforms = tf
        sys.modules['torchvision'] = tv
        sys.modules['torchvision.transforms'] = tf
    try:
        import imageio  # noqa: F401  (parallel_utils imports it only to write files)
    except ImportError:
        sys.modules['imageio'] = types.ModuleType('imageio')
    if 'depth_anything_3.utils.export' not in sys.modules:
        stub = types.ModuleType('depth_anything_3.utils.export')

        def export(*args, **kwargs):
            raise NotImplementedError('export is stubbed in tests')

        stub.export = export
        sys.modules['depth_anything_3.utils.export'] = stub


@functools.cache
def input_processor():
    """The official `InputProcessor` instance (sequential; no worker pool)."""
    _install_shims()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from depth_anything_3.utils.io.input_processor import InputProcessor
    return InputProcessor()


def official_preprocess(images, intrinsics=None, process_res=504, method='upper_bound_resize'):
    """Run the official preprocessing; returns (images (N,3,H,W), intrinsics (N,3,3) or None)."""
    imgs, _, ixts = input_processor()(
        images, None, intrinsics, process_res, method, num_workers=1, sequential=True,
        desc=None,
    )
    return imgs, ixts


@functools.cache
def api_class():
    """The official `DepthAnything3` class (not instantiated: no weights are built)."""
    _install_shims()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from depth_anything_3.api import DepthAnything3
    return DepthAnything3


def official_normalize_extrinsics(T_cam_world: np.ndarray) -> np.ndarray:
    """The API's `_normalize_extrinsics` on (S, 4, 4) w2c, fed (1, S, 4, 4) fp32 like the API."""
    ex_t = torch.from_numpy(np.asarray(T_cam_world)).float()[None]
    out = api_class()._normalize_extrinsics(None, ex_t.clone())
    return out[0].numpy()


def official_api(official_net: torch.nn.Module, model_name: str):
    """A `DepthAnything3` around an already built official network, with its forward in fp32.

    The official `forward` autocasts to fp16 on CPU; for parity the wrapped
    network is called directly. Everything else (`inference`: preprocessing,
    extrinsics normalisation, output processing, Umeyama alignment) is the official code.
    """
    cls = api_class()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from depth_anything_3.utils.io.output_processor import OutputProcessor
    api = cls.__new__(cls)
    torch.nn.Module.__init__(api)
    api.model_name, api.model, api.device = model_name, official_net.eval(), None
    api.input_processor, api.output_processor = input_processor(), OutputProcessor()

    def forward_fp32(image, extrinsics=None, intrinsics=None, export_feat_layers=None,
                     infer_gs=False, use_ray_pose=False, ref_view_strategy='saddle_balanced'):
        with torch.no_grad():
            return api.model(image, extrinsics, intrinsics, export_feat_layers, infer_gs,
                             use_ray_pose, ref_view_strategy)

    api.forward = forward_fp32
    return api
