"""Image preprocessing for DA3, bit-exact with the official `InputProcessor`.

Two paths share one `ResizePlan`:
* `preprocess` (numpy + cv2 on the host) reproduces the official network tensor to <= 1e-6
  (in practice bit-identical) and the official intrinsics transform.
* `preprocess_torch` (torch ops only, any device) matches it to 1 uint8 step without host
  round trips, for views that share one size; its measured tolerance is in its docstring.

Also `normalize_extrinsics`, the API's camera-conditioning normalisation.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from da3_ros.errors import ConfigError, InputError
from da3_ros.geometry.sim3 import invert_se3
from da3_ros.model.variants import PATCH_PX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
METHODS = ('upper_bound_resize', 'upper_bound_crop', 'lower_bound_resize', 'lower_bound_crop')
MIN_DIST = 0.1   # clamp of the median camera distance in normalize_extrinsics (official)


@dataclass(frozen=True)
class ResizePlan:
    """How one view goes from its input size to the network size (all sizes (h, w) in pixels).

    input_hw: the image as given
    bound_hw: after the boundary resize (longest/shortest side = process_res)
    network_hw: after the multiple-of-14 step (second resize, or centre crop), per view
    crop_top, crop_left: offsets of the multiple-of-14 crop in bound_hw pixels (0 for *_resize)
    scale_x, scale_y: network pixels per input pixel (product of both resize stages)
    """

    method: str
    input_hw: tuple[int, int]
    bound_hw: tuple[int, int]
    network_hw: tuple[int, int]
    crop_top: int
    crop_left: int
    scale_x: float
    scale_y: float

    @property
    def two_stage(self) -> bool:
        """True for *_resize methods (a second cv2.resize to the multiple of 14)."""
        return self.method.endswith('resize')


def _nearest_multiple(x: int, p: int) -> int:
    down = (x // p) * p
    up = down + p
    return up if abs(up - x) <= abs(x - down) else down   # ties go up


def check_resize_config(process_res: int, method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f'process_res_method {method!r} is not one of {METHODS}')
    if isinstance(process_res, bool) or not isinstance(process_res, (int, np.integer)):
        raise ConfigError(f'process_res must be an int, got {process_res!r}')
    if process_res < PATCH_PX:
        raise ConfigError(f'process_res must be >= {PATCH_PX}, got {process_res}')


def plan_resize(h: int, w: int, process_res: int = 504,
                method: str = 'upper_bound_resize') -> ResizePlan:
    """The official resize plan for an h x w image (Python round-half-even, as the official).

    Raises ConfigError for an unknown method or process_res < 14, InputError for an image
    with a side below one patch (14 px: too small for the network, however it is resized) or
    one so elongated that a network side would be shorter than 14 px.
    """
    check_resize_config(process_res, method)
    if h <= 0 or w <= 0:
        raise InputError(f'image size must be positive, got {h}x{w} (h x w)')
    if h < PATCH_PX or w < PATCH_PX:
        raise InputError(f'image {h}x{w} (h x w) is smaller than one {PATCH_PX} px network '
                         f'patch: each side must reach {PATCH_PX} px')
    side = max(h, w) if method.startswith('upper') else min(h, w)
    bh, bw = h, w
    if side != process_res:
        scale = process_res / float(side)
        bh, bw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    top = left = 0
    if method.endswith('resize'):
        nh = max(1, _nearest_multiple(bh, PATCH_PX))
        nw = max(1, _nearest_multiple(bw, PATCH_PX))
        sx, sy = (bw / float(w)) * (nw / float(bw)), (bh / float(h)) * (nh / float(bh))
    else:
        nh, nw = (bh // PATCH_PX) * PATCH_PX, (bw // PATCH_PX) * PATCH_PX
        top, left = (bh - nh) // 2, (bw - nw) // 2
        sx, sy = bw / float(w), bh / float(h)
    if nh < PATCH_PX or nw < PATCH_PX:
        raise InputError(f'image {h}x{w} (h x w) would become {nh}x{nw} with {method} at '
                         f'process_res {process_res}; each side must reach {PATCH_PX} px')
    return ResizePlan(method, (h, w), (bh, bw), (nh, nw), top, left, sx, sy)


@dataclass(frozen=True)
class Preprocessed:
    """Network input for one multi-view sample.

    images: (1, S, 3, H, W) float32, ImageNet-normalised RGB, H and W multiples of 14
    plans: per-view ResizePlan (network_hw before the common crop)
    crops: per-view (top, left) of the common centre crop applied to the image, in network
        pixels (torchvision CenterCrop: round((H_v - H) / 2)); (0, 0) when all sizes agree
    crops_ixt: the same offsets as the official shifts the intrinsics: (H_v - H) // 2. They
        equal `crops` whenever the size difference is even (always, for multiples of 14).
    """

    images: torch.Tensor
    plans: tuple[ResizePlan, ...]
    crops: tuple[tuple[int, int], ...]
    crops_ixt: tuple[tuple[int, int], ...]

    def scale_intrinsics(self, K: np.ndarray) -> np.ndarray:
        """Map pinhole intrinsics from input pixels to network pixels, as the official does.

        K: (S, 3, 3) float, pixels of each view's input image (float32 stays float32)
        returns (S, 3, 3), pixels of `images`: row 0 (fx, skew, cx) times the x ratio and row 1
        (fy, cy) times the y ratio per resize stage, then minus the crop offsets; no
        half-pixel correction.
        """
        K = np.asarray(K)
        S = len(self.plans)
        if K.shape != (S, 3, 3) or not np.issubdtype(K.dtype, np.number):
            raise InputError(f'K must be a numeric ({S}, 3, 3) array, got {K.shape} {K.dtype}')
        if not np.isfinite(K).all():
            raise InputError('K contains NaN or inf')
        out = np.array(K, dtype=np.result_type(K.dtype, np.float32))
        for v, (p, (top, left)) in enumerate(zip(self.plans, self.crops_ixt, strict=True)):
            (h, w), (bh, bw), (nh, nw) = p.input_hw, p.bound_hw, p.network_hw
            out[v, :1] *= bw / float(w)
            out[v, 1:2] *= bh / float(h)
            if p.two_stage:
                out[v, :1] *= nw / float(bw)
                out[v, 1:2] *= nh / float(bh)
            else:
                out[v, 0, 2] -= p.crop_left
                out[v, 1, 2] -= p.crop_top
            out[v, 0, 2] -= left
            out[v, 1, 2] -= top
        return out


def as_rgb(v: int, img):
    """One view as (H, W, 3) uint8 RGB, converted as the official API's PIL .convert('RGB')
    does: 2-D (H, W) or (H, W, 1) grayscale is repeated into 3 channels, RGBA (H, W, 4)
    loses its alpha (not composited). numpy arrays and torch tensors; (H, W, 3) comes back
    as is. Any other shape or dtype raises InputError saying how to convert.
    """
    shape = tuple(img.shape)
    if img.ndim == 3 and shape[2] == 3:
        rgb = img
    elif img.ndim == 2 or (img.ndim == 3 and shape[2] == 1):
        grey = img if img.ndim == 2 else img[..., 0]
        rgb = (grey[..., None].expand(*grey.shape, 3) if isinstance(grey, torch.Tensor)
               else np.repeat(grey[..., None], 3, axis=2))
    elif img.ndim == 3 and shape[2] == 4:
        rgb = img[..., :3]
    else:
        raise InputError(f'view {v}: shape must be (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) '
                         f'grayscale, got {shape}; convert it first, e.g. '
                         f'cv2.cvtColor(img, cv2.COLOR_BGR2RGB) for BGR, or '
                         f'np.moveaxis(img, 0, -1) for channels-first (3, H, W)')
    if img.dtype not in (np.uint8, torch.uint8):
        raise InputError(f'view {v}: dtype must be uint8, got {img.dtype}; scale and convert '
                         f'it first, e.g. np.clip(img * 255, 0, 255).astype(np.uint8) for '
                         f'floats in [0, 1]')
    if shape[0] == 0 or shape[1] == 0:
        raise InputError(f'view {v}: zero-size image {shape}')
    return rgb


def _check_image(v: int, img) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise InputError(f'view {v}: expected a numpy array, got {type(img).__name__}')
    return as_rgb(v, img)


def _resize_cv2(img: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """(H, W, 3) uint8 -> network_hw uint8 by the official cv2 stages."""
    (h, w), (bh, bw), (nh, nw) = plan.input_hw, plan.bound_hw, plan.network_hw
    if (bh, bw) != (h, w):
        side, bside = ((max(h, w), max(bh, bw)) if plan.method.startswith('upper')
                       else (min(h, w), min(bh, bw)))
        interp = cv2.INTER_CUBIC if bside > side else cv2.INTER_AREA
        img = cv2.resize(np.ascontiguousarray(img), (bw, bh), interpolation=interp)
    if plan.two_stage:
        if (nh, nw) != (bh, bw):
            interp = cv2.INTER_CUBIC if (nw > bw or nh > bh) else cv2.INTER_AREA
            img = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=interp)
    else:
        img = img[plan.crop_top:plan.crop_top + nh, plan.crop_left:plan.crop_left + nw]
    return img


def _common_crops(sizes: list[tuple[int, int]]):
    """Image offsets (torchvision round) and intrinsics offsets (floor) to min H / min W."""
    mh, mw = min(h for h, _ in sizes), min(w for _, w in sizes)
    img = tuple((int(round((h - mh) / 2.0)), int(round((w - mw) / 2.0))) for h, w in sizes)
    ixt = tuple(((h - mh) // 2, (w - mw) // 2) for h, w in sizes)
    return (mh, mw), img, ixt


def mixed_sizes_note(names: list[str], sizes: list[tuple[int, int]], process_res: int = 504,
                     method: str = 'upper_bound_resize') -> str | None:
    """None when every view has one (h, w); else one line for a warning that names each view,
    its input size and network size, and the common processing size every view is
    centre-cropped to (the official policy: the smallest network H and W). Raises InputError
    as plan_resize for a view too small for the network.
    """
    if len(set(sizes)) <= 1:
        return None
    plans = [plan_resize(h, w, process_res, method) for h, w in sizes]
    (mh, mw), _, _ = _common_crops([p.network_hw for p in plans])
    views = ', '.join(
        f'{name} {h}x{w} -> {p.network_hw[0]}x{p.network_hw[1]}'
        + (' (cropped)' if p.network_hw != (mh, mw) else '')
        for name, (h, w), p in zip(names, sizes, plans, strict=True))
    return (f'images of different sizes in one set (h x w, input -> network at process_res '
            f'{process_res}, {method}): {views}; the network processes every view at '
            f'{mh}x{mw}, centre-cropping the larger ones, so their borders get no depth')


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float32 in 0..255 -> ToTensor (/255) then ImageNet normalisation."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device)[:, None, None]
    return x.div(255).sub(mean).div(std)


def preprocess(images: list[np.ndarray], process_res: int = 504,
               method: str = 'upper_bound_resize') -> Preprocessed:
    """The official preprocessing (cv2 on the host), one image at a time, then stacked.

    images: S arrays (H_v, W_v, 3) uint8 RGB, sizes may differ per view; (H, W) grayscale and
        (H, W, 4) RGBA are converted (as_rgb); each side at least 14 px
    process_res: target of the longest (upper_bound_*) or shortest (lower_bound_*) side, px
    returns Preprocessed with images (1, S, 3, H, W) float32 on the CPU; views of different
    network sizes are centre-cropped to the smallest H and the smallest W, as the official.
    """
    check_resize_config(process_res, method)
    if not isinstance(images, (list, tuple)) or len(images) == 0:
        raise InputError('images must be a non-empty list of (H, W, 3) uint8 arrays')
    images = [_check_image(v, img) for v, img in enumerate(images)]
    plans = tuple(plan_resize(img.shape[0], img.shape[1], process_res, method)
                  for img in images)
    arrays = [_resize_cv2(img, p) for img, p in zip(images, plans, strict=True)]
    (mh, mw), crops, crops_ixt = _common_crops([p.network_hw for p in plans])
    arrays = [a[t:t + mh, lft:lft + mw] for a, (t, lft) in zip(arrays, crops, strict=True)]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return Preprocessed(_normalise(x)[None].contiguous(), plans, crops, crops_ixt)


def _area_taps(n_in: int, n_out: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cv2 INTER_AREA shrinking n_in -> n_out as K = ceil(n_in / n_out) + 1 taps per output.

    returns (index (n_out, K) int64 input positions, clamped; weight (n_out, K) float32, the
    box-filter overlap / scale, 0 for taps past the box), so that
    out[o] = sum_k weight[o, k] * in[index[o, k]]
    """
    s = n_in / n_out
    taps = int(np.ceil(s)) + 1
    lo = torch.arange(n_out, device=device, dtype=torch.float64)[:, None] * s
    j = torch.floor(lo) + torch.arange(taps, device=device, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(j + 1, lo + s) - torch.maximum(j, lo)).clamp(min=0)
    return j.clamp(max=n_in - 1).long(), (overlap / s).float()


def _area_axis(x: torch.Tensor, n_out: int, dim: int) -> torch.Tensor:
    """INTER_AREA along one axis of x (any dtype) -> float32; no rounding."""
    index, weight = _area_taps(x.shape[dim], n_out, x.device)
    taps = x.index_select(dim, index.reshape(-1)).unflatten(dim, tuple(index.shape))
    weight = weight.reshape(weight.shape + (1,) * (x.ndim - dim - 1))
    return (taps.float() * weight).sum(dim + 1)


def _resize_torch(x: torch.Tensor, size: tuple[int, int], enlarge: bool) -> torch.Tensor:
    """(S, H, W, 3) uint8-valued -> size, rounded and clamped like cv2's uint8 output.

    Enlarging: bicubic (a = -0.75, as cv2 INTER_CUBIC). Shrinking: the exact INTER_AREA box
    filter, separable, as a few taps per output pixel (F.interpolate does not offer it).
    """
    if enlarge:
        y = F.interpolate(x.permute(0, 3, 1, 2).float(), size=size, mode='bicubic',
                          align_corners=False).permute(0, 2, 3, 1)
    else:
        y = x
        if size[1] != x.shape[2]:
            y = _area_axis(y, size[1], 2)
        if size[0] != x.shape[1]:
            y = _area_axis(y, size[0], 1)
    return y.float().round().clamp(0, 255)


def _preprocess_core(images: torch.Tensor, bound_hw: tuple[int, int],
                     network_hw: tuple[int, int], crop_tl: tuple[int, int] | None,
                     ) -> torch.Tensor:
    """(S, H, W, 3) uint8 -> (1, S, 3, H', W') float32 normalised, by a ResizePlan's numbers
    (crop_tl None = two-stage resize). Torch ops and plain ints only: torch.compile turns it
    into a few fused kernels and specialises on the sizes."""
    (h, w), (bh, bw), (nh, nw) = images.shape[1:3], bound_hw, network_hw
    x = images
    if (bh, bw) != (h, w):
        x = _resize_torch(x, (bh, bw), enlarge=max(bh, bw) > max(h, w))
    if crop_tl is None:
        if (nh, nw) != (bh, bw):
            x = _resize_torch(x, (nh, nw), enlarge=nw > bw or nh > bh)
    else:
        x = x[:, crop_tl[0]:crop_tl[0] + nh, crop_tl[1]:crop_tl[1] + nw]
    return _normalise(x.permute(0, 3, 1, 2).float())[None].contiguous()


def _core_args(plan: ResizePlan) -> tuple:
    crop = None if plan.two_stage else (plan.crop_top, plan.crop_left)
    return plan.bound_hw, plan.network_hw, crop


def preprocess_torch(images: torch.Tensor, process_res: int = 504,
                     method: str = 'upper_bound_resize') -> torch.Tensor:
    """Approximate `preprocess` with torch ops on the images' device (no host round trip).

    images: (S, H, W, 3) uint8 RGB, one size for all views, any device
    returns (1, S, 3, H', W') float32 on the same device, the same plan as `preprocess`.
    Shrinking uses the exact INTER_AREA box filter (separable, ceil(scale) + 1 taps per output
    pixel; F.interpolate's antialiased bilinear was measured at max 22 / mean 1.0 uint8 units
    off, so it is not used), enlarging bicubic (a = -0.75, as cv2 INTER_CUBIC); each stage
    rounds and clamps to the uint8 grid, as cv2 does.
    Tolerance vs `preprocess`, in uint8 units (|difference| * std * 255), measured on CPU on the
    nuScenes 1600x900 and SOH 1208x680 images with all four methods and on 640x480 / 300x200
    crops (enlarging): max abs 1, mean abs <= 0.001. Asserted bound: max 2, mean 0.01.
    On CUDA, `preprocess_torch_fast` is the same function compiled.
    """
    return _preprocess_core(images, *_core_args(_check_torch_images(images, process_res,
                                                                     method)))


def _check_torch_images(images, process_res: int, method: str) -> ResizePlan:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        what = getattr(images, 'dtype', type(images).__name__)
        raise InputError(f'images must be a uint8 torch tensor, got {what}')
    if images.ndim != 4 or images.shape[-1] != 3 or 0 in images.shape:
        raise InputError(f'images must be (S, H, W, 3), S, H, W > 0, got {tuple(images.shape)}')
    return plan_resize(images.shape[1], images.shape[2], process_res, method)


def preprocess_torch_fast(images: torch.Tensor, process_res: int = 504,
                          method: str = 'upper_bound_resize') -> torch.Tensor:
    """`preprocess_torch`, through torch.compile for CUDA tensors (eager elsewhere, or if
    compiling fails). The first call per input size compiles (seconds)."""
    plan = _check_torch_images(images, process_res, method)
    return _fast_core()(images, *_core_args(plan))


@functools.cache
def _fast_core():
    from da3_ros.engine.compiled import compile_or_eager
    return compile_or_eager(_preprocess_core)


def normalize_extrinsics(T_cam_world: np.ndarray) -> tuple[np.ndarray, float]:
    """The official API's normalisation of input extrinsics for camera conditioning.

    T_cam_world: (S, 4, 4) float, world -> camera (OpenCV), metres, last row [0, 0, 0, 1]
    returns (T_norm (S, 4, 4) float64, scale): T_norm_v = T_v @ inv(T_0) (view 0 becomes the
    identity; inverses are rigid, R^T and -R^T t) with translations divided by `scale`, the
    lower median (torch.median) of the camera-centre distances, clamped to >= 0.1.
    Quirk kept: with 2 views the distances are [0, d], the median is 0 and scale is 0.1, so
    translations are multiplied by 10. The official runs this in float32; this runs float64.
    """
    T = np.asarray(T_cam_world)
    if T.ndim != 3 or T.shape[1:] != (4, 4) or T.shape[0] == 0:
        raise InputError(f'T_cam_world must be (S, 4, 4) with S >= 1, got {T.shape}')
    T = T.astype(np.float64)
    if not np.isfinite(T).all():
        raise InputError('T_cam_world contains NaN or inf')
    bad = np.flatnonzero(np.abs(T[:, 3] - [0.0, 0.0, 0.0, 1.0]).max(axis=1) > 1e-6)
    if bad.size:
        raise InputError(f'T_cam_world views {bad.tolist()} have a last row other than [0 0 0 1]')
    T_norm = T @ invert_se3(T[0])
    centres = invert_se3(T_norm)[:, :3, 3]
    dists = np.sort(np.linalg.norm(centres, axis=-1))
    scale = max(float(dists[(len(dists) - 1) // 2]), MIN_DIST)
    T_norm[:, :3, 3] /= scale
    return T_norm, scale
