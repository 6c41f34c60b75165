"""PyTorch backend: the da3_ros network in eager mode on CPU or CUDA.

    backend = TorchBackend.from_pretrained('depth-anything/DA3-SMALL', device='cuda',
                                           precision='bf16')

Precision 'fp32' runs everything in float32. 'bf16' / 'fp16' autocast the backbone as the
official API does (camera encoder, heads, camera decoder and ray solver stay float32 inside
the network), so outputs differ from fp32 by the usual reduced-precision error. With them the
backbone's linear and convolution weights are stored in that precision once
(engine.compiled.cast_autocast_weights: autocast's own rounding, without a cast per call).
"""
from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from da3_ros.engine.backend import REF_VIEW_STRATEGIES, Backend
from da3_ros.errors import ConfigError
from da3_ros.model.da3 import DA3Output, NestedDA3Net

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
AUTO = 'auto'


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' on CUDA GPUs with native bf16 (compute capability 8.0 and later:
    Ampere, Ada, Hopper, Jetson Orin), 'fp16' on older CUDA GPUs, 'fp32' on the CPU (where
    bf16 autocast is slower than fp32 on most processors); any other value unchanged."""
    if precision != AUTO:
        return precision
    if device.type != 'cuda':
        return 'fp32'
    return 'bf16' if torch.cuda.get_device_capability(device)[0] >= 8 else 'fp16'


def resolve_device(device: str | torch.device) -> torch.device:
    """torch.device of a name, refusing CUDA when it is not available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f'unknown device {device!r}: {err}') from err
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError(f'device {device!r} requested but CUDA is not available')
    if dev.type not in ('cpu', 'cuda'):
        raise ConfigError(f'device must be cpu or cuda[:N], got {device!r}')
    return dev


class TorchBackend(Backend):
    """Runs a DA3Net / NestedDA3Net (weights already loaded) on one device.

    net: the network; moved to `device`, put in eval mode and, for bf16 / fp16, given
        weights stored in that precision where autocast would cast them
    device: 'cpu', 'cuda' or 'cuda:N'
    precision: 'fp32', 'bf16' or 'fp16' (autocast of the backbone, as the official API), or
        'auto' (resolve_precision: bf16 / fp16 by GPU, fp32 on the CPU)
    """

    name = 'torch'
    ref_view_strategies = REF_VIEW_STRATEGIES
    default_ref_view_strategy = 'saddle_balanced'    # the official default
    supports_ray_pose = True
    supports_rays = True
    supports_descriptors = True

    def __init__(self, net: nn.Module, device: str | torch.device = 'cpu',
                 precision: str = 'fp32', compile: bool = False):
        """compile: run the network through engine.compiled.compile_network with its FAST
        settings (CUDA and precision 'bf16' only: bf16 reaches the heads and the camera
        decoder too, CUDA graphs); the first call of each input shape compiles."""
        if precision not in PRECISIONS and precision != AUTO:
            raise ConfigError(f'precision must be one of {sorted(PRECISIONS)} or {AUTO!r}, '
                              f'got {precision!r}')
        self.device = resolve_device(device)
        precision = resolve_precision(precision, self.device)
        if self.device.type == 'cpu' and precision == 'fp16':
            raise ConfigError('fp16 autocast on CPU is not supported; use fp32 or bf16')
        if compile and (self.device.type != 'cuda' or precision != 'bf16'):
            raise ConfigError(f'compile needs a CUDA device and precision bf16, got '
                              f'{self.device.type} / {precision}')
        self.precision = precision
        self.net = net.to(self.device).eval().requires_grad_(False)
        if PRECISIONS[precision] is not None:
            from da3_ros.engine.compiled import cast_autocast_weights
            cast_autocast_weights(self.net, PRECISIONS[precision])
        self._forward = self.net
        if compile:
            from da3_ros.engine.compiled import FAST, compile_network
            self._forward = compile_network(self.net, FAST)
        self.spec = net.spec
        self.supports_cameras = isinstance(net, NestedDA3Net) or net.spec.has_camera

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, device: str | torch.device = 'cpu',
                        precision: str = 'fp32', compile: bool = False) -> TorchBackend:
        """Load official weights (HF id or local folder) straight onto `device`."""
        from da3_ros.model.checkpoint import load
        return cls(load(name_or_dir, device=resolve_device(device)), device, precision,
                   compile)

    def infer(self, images: Tensor, extrinsics: Tensor | None = None,
              intrinsics: Tensor | None = None, *, ref_view_strategy: str = 'saddle_balanced',
              use_ray_pose: bool = False, return_rays: bool = False,
              return_descriptors: bool = False) -> DA3Output:
        self.check_request(images, extrinsics, ref_view_strategy, use_ray_pose, return_rays,
                           return_descriptors)
        dtype = PRECISIONS[self.precision]
        to = {'device': self.device, 'dtype': torch.float32}
        x = images.to(**to)
        extrinsics = None if extrinsics is None else extrinsics.to(**to)
        intrinsics = None if intrinsics is None else intrinsics.to(**to)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype,
                                                    enabled=dtype is not None):
            return self._forward(x, extrinsics, intrinsics, use_ray_pose, ref_view_strategy,
                                 return_rays, return_descriptor=return_descriptors)
