"""DepthAnything3Net and NestedDepthAnything3Net: wiring of backbone, heads and cameras."""
from __future__ import annotations

from contextlib import nullcontext
from typing import NamedTuple

import torch
from torch import Tensor, nn

from da3_ros.errors import ConfigError, InputError
from da3_ros.model import postprocess
from da3_ros.model.backbone import Backbone
from da3_ros.model.camera import (
    CameraDecoder,
    CameraEncoder,
    cameras_to_pose_encoding,
    pose_encoding_to_cameras,
)
from da3_ros.model.heads import DPT, GSDPT, DualDPT
from da3_ros.model.ray_pose import rays_to_cameras
from da3_ros.model.variants import PATCH_PX, ModelSpec, NestedSpec, get_spec

HEAD_CHUNK_FRAMES = 8   # the official heads run 8 frames at a time (memory), as here


def _run_head(head: nn.Module, flat: list[Tensor], H: int, W: int, **kwargs):
    """The dense head over B*S frames, 8 frames at a time like the official (the head is
    per-frame, so chunking is exact); one pass when tracing, so exported graphs have no loop.
    Output fields that the head leaves None stay None."""
    n = flat[0].shape[0]
    if n <= HEAD_CHUNK_FRAMES or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return head(flat, H, W, **kwargs)
    parts = [head([f[i:i + HEAD_CHUNK_FRAMES] for f in flat], H, W, **kwargs)
             for i in range(0, n, HEAD_CHUNK_FRAMES)]
    return type(parts[0])(*(None if items[0] is None else torch.cat(items)
                            for items in zip(*parts, strict=True)))


def global_descriptor(tokens: Tensor) -> Tensor:
    """(B, S, P, C) patch tokens -> (B, S, C) float32: mean over P, unit L2 norm."""
    mean = tokens.float().mean(dim=2)
    return mean / mean.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class DA3Output(NamedTuple):
    """What the official network returns, under the official key names (absent = None)."""

    depth: Tensor                        # (B, S, H, W) z-depth, model units (metres if NESTED)
    depth_conf: Tensor | None = None     # (B, S, H, W) > 1 (exp + 1); any-view models
    extrinsics: Tensor | None = None     # (B, S, 3, 4) T_cam_world, OpenCV axes
    intrinsics: Tensor | None = None     # (B, S, 3, 3) pixels of the network input
    sky: Tensor | None = None            # (B, S, H, W) sky score, sky >= 0.3; METRIC/MONO
    ray: Tensor | None = None            # (B, S, 8ph, 8pw, 6) only with return_rays
    ray_conf: Tensor | None = None       # (B, S, 8ph, 8pw) only with return_rays
    scale_factor: Tensor | None = None   # 0-d, NESTED metric scale applied to depth/poses
    descriptor: Tensor | None = None     # (B, S, C) place descriptor, only with return_descriptor

    def as_dict(self) -> dict[str, Tensor]:
        return {k: v for k, v in self._asdict().items() if v is not None}


def check_images(x: Tensor) -> None:
    if x.ndim != 5 or x.shape[2] != 3:
        raise InputError(f'images must be (B, S, 3, H, W), got {tuple(x.shape)}')
    if x.shape[-2] % PATCH_PX or x.shape[-1] % PATCH_PX:
        raise InputError(f'H and W must be multiples of {PATCH_PX}, got {tuple(x.shape[-2:])}')


class DA3Net(nn.Module):
    """One DA3 network. forward(images (B, S, 3, H, W) ImageNet-normalised) -> DA3Output."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.fast_heads = False
        bb, hd = spec.backbone, spec.head
        self.backbone = Backbone(bb)
        head_cls = DualDPT if hd.kind == 'dualdpt' else DPT
        self.head = head_cls(bb.out_dim, hd.features, hd.out_channels)
        if spec.has_camera:
            self.cam_enc = CameraEncoder(bb.embed_dim)
            self.cam_dec = CameraDecoder(bb.out_dim)
        if spec.gs_head:
            self.gs_head = GSDPT(bb.out_dim, hd.features, hd.out_channels)

    def forward(self, x: Tensor, extrinsics: Tensor | None = None,
                intrinsics: Tensor | None = None, use_ray_pose: bool = False,
                ref_view_strategy: str = 'saddle_balanced', return_rays: bool = False,
                fill_sky: bool = True, pose_enc: Tensor | None = None,
                return_descriptor: bool = False) -> DA3Output:
        """x: (B, S, 3, H, W); extrinsics: (B, S, 4, 4) T_cam_world normalised as the API does;
        intrinsics: (B, S, 3, 3) network-input pixels. Both or neither.

        fill_sky=False skips the official data-dependent sky fill of METRIC/MONO depth (an
        exported graph stops before it; the host applies it).
        pose_enc: (B, S, 9) pose encoding of the cameras, instead of extrinsics + intrinsics
        (exported graphs take it as an input: its quaternion step has boolean indexing).
        return_descriptor: also return a global place descriptor per view: the mean of the
        last output layer's patch tokens, L2-normalised (loop retrieval, no extra network)."""
        check_images(x)
        B, S, _, H, W = x.shape
        cam_token = None
        if (extrinsics is None) != (intrinsics is None):
            raise InputError('camera conditioning needs both extrinsics and intrinsics')
        if extrinsics is not None:
            if pose_enc is not None:
                raise InputError('give extrinsics + intrinsics or pose_enc, not both')
            pose_enc = cameras_to_pose_encoding(extrinsics, intrinsics, (H, W))
        if pose_enc is not None:
            if not self.spec.has_camera:
                raise ConfigError(f'{self.spec.name} has no camera encoder')
            with torch.autocast(x.device.type, enabled=False):
                cam_token = self.cam_enc(pose_enc.float())
        feats = self.backbone(x, cam_token, ref_view_strategy)
        flat = [f.reshape(B * S, f.shape[2], f.shape[3]) for f in feats.features]
        descriptor = global_descriptor(feats.features[-1]) if return_descriptor else None
        # The official runs heads and the camera decoder in fp32 whatever the outer autocast;
        # fast_heads lets an outer autocast reach them (faster on GPUs, not bit-comparable).
        fp32 = nullcontext() if self.fast_heads else torch.autocast(x.device.type, enabled=False)
        with fp32:
            if self.spec.head.kind == 'dpt':
                depth, sky = (t.reshape(B, S, H, W) for t in _run_head(self.head, flat, H, W))
                return DA3Output(postprocess.fill_sky(depth, sky) if fill_sky else depth, sky=sky,
                                 descriptor=descriptor)
            out = _run_head(self.head, flat, H, W, rays=use_ray_pose or return_rays)
            depth, conf = out.depth.reshape(B, S, H, W), out.depth_conf.reshape(B, S, H, W)
            ray = ray_conf = None
            if out.ray is not None:
                ray = out.ray.reshape((B, S) + out.ray.shape[1:])
                ray_conf = out.ray_conf.reshape((B, S) + out.ray_conf.shape[1:])
            if use_ray_pose:
                extr, K = rays_to_cameras(ray, ray_conf, (H, W))
            else:
                extr, K = pose_encoding_to_cameras(self.cam_dec(feats.camera_tokens[-1]), (H, W))
        if not return_rays:
            ray = ray_conf = None
        return DA3Output(depth, conf, extr, K, ray=ray, ray_conf=ray_conf, descriptor=descriptor)


class NestedDA3Net(nn.Module):
    """Any-view GIANT (`da3`) scaled to metres by METRIC-LARGE (`da3_metric`)."""

    def __init__(self, spec: NestedSpec):
        super().__init__()
        self.spec = spec
        self.da3 = DA3Net(spec.anyview)
        self.da3_metric = DA3Net(spec.metric)

    def forward(self, x: Tensor, extrinsics: Tensor | None = None,
                intrinsics: Tensor | None = None, use_ray_pose: bool = False,
                ref_view_strategy: str = 'saddle_balanced', return_rays: bool = False,
                return_descriptor: bool = False) -> DA3Output:
        out = self.da3(x, extrinsics, intrinsics, use_ray_pose, ref_view_strategy, return_rays,
                       return_descriptor=return_descriptor)
        metric = self.da3_metric(x)   # never camera-conditioned
        metric_depth = postprocess.metric_depth_from_focal(metric.depth, out.intrinsics)
        scale = postprocess.nested_scale(out.depth, out.depth_conf, metric_depth, metric.sky)
        extrinsics = torch.cat([out.extrinsics[..., :3], out.extrinsics[..., 3:] * scale], -1)
        depth, conf = postprocess.nested_sky_fill(out.depth * scale, out.depth_conf, metric.sky)
        return out._replace(depth=depth, depth_conf=conf, extrinsics=extrinsics,
                            scale_factor=scale)


def build(variant: str | ModelSpec | NestedSpec) -> DA3Net | NestedDA3Net:
    """A randomly initialised network of a variant name, HF id or spec."""
    spec = get_spec(variant) if isinstance(variant, str) else variant
    return NestedDA3Net(spec) if isinstance(spec, NestedSpec) else DA3Net(spec)
