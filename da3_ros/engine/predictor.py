"""Predictor: the one contract every caller uses, whatever backend runs the network.

    predictor = Predictor(TorchBackend.from_pretrained('depth-anything/DA3-SMALL', 'cuda'))
    pred = predictor.predict([rgb_front, rgb_left, rgb_right], intrinsics=K, extrinsics=T)

It does what the official `DepthAnything3.inference` does around the network:
resize/crop/normalise, camera-conditioning normalisation, then the network (with
its in-network post-processing), then sky mask, metric scaling and alignment to the scale of
given extrinsics. Additions over the official API: metres for DA3METRIC when intrinsics are
given (focal / 300), any view count for the extrinsics alignment (S = 1, 2 and collinear rigs
do not raise), and the mapping back to input pixels.
"""
from __future__ import annotations

import numpy as np
import torch

from da3_ros.engine.backend import Backend
from da3_ros.engine.pose_alignment import apply_to_extrinsics, fit_given_to_predicted
from da3_ros.engine.prediction import Prediction, TensorPrediction, ViewGeometry
from da3_ros.engine.preprocess import (
    Preprocessed,
    as_rgb,
    check_resize_config,
    normalize_extrinsics,
    plan_resize,
    preprocess,
    preprocess_torch_fast,
)
from da3_ros.errors import ConfigError, InputError
from da3_ros.model.postprocess import METRIC_FOCAL_PX
from da3_ros.model.variants import NestedSpec

SKY_MASK_THRESHOLD = 0.5     # the official API's bool sky (the network's own fill uses 0.3)


def _check_images(images) -> list | torch.Tensor:
    """A non-empty list of (H, W, 3) uint8 RGB numpy arrays or torch tensors, or one
    (S, H, W, 3) uint8 torch tensor (returned as is). Grayscale ((H, W), (S, H, W)) and RGBA
    ((H, W, 4), (S, H, W, 4)) are converted as the official API does (preprocess.as_rgb);
    other shapes raise InputError saying how to convert."""
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8 or 0 in images.shape or not (
                images.ndim == 3 or (images.ndim == 4 and images.shape[3] in (1, 3, 4))):
            raise InputError(f'a stacked image tensor must be (S, H, W, 3) uint8 RGB (or '
                             f'(S, H, W) grayscale, (S, H, W, 4) RGBA) with S, H, W > 0, got '
                             f'{tuple(images.shape)} {images.dtype}')
        if images.ndim == 3 or images.shape[3] == 1:
            grey = images if images.ndim == 3 else images[..., 0]
            return grey[..., None].expand(*grey.shape, 3).contiguous()
        return images if images.shape[3] == 3 else images[..., :3].contiguous()
    if not isinstance(images, (list, tuple)) or len(images) == 0:
        raise InputError('images must be a non-empty list of (H, W, 3) uint8 RGB images')
    out = []
    for v, img in enumerate(images):
        if not isinstance(img, (np.ndarray, torch.Tensor)):
            raise InputError(f'view {v}: expected a numpy array or torch tensor, '
                             f'got {type(img).__name__}')
        out.append(as_rgb(v, img))
    return out


def _check_matrices(value, S: int, shape: tuple[int, int], name: str) -> np.ndarray | None:
    """None, or (S, *shape) finite float64 from an array, tensor or list of matrices."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f'{name} must be numeric {(S, *shape)}: {err}') from err
    if array.shape != (S, *shape):
        raise InputError(f'{name} must be {(S, *shape)} for {S} images, got {array.shape}')
    if not np.isfinite(array).all():
        raise InputError(f'{name} contains NaN or inf')
    return array


def _check_intrinsics(K: np.ndarray | None) -> None:
    if K is None:
        return
    bad = np.flatnonzero((K[:, 0, 0] <= 0) | (K[:, 1, 1] <= 0))
    if bad.size:
        raise InputError(f'intrinsics of views {bad.tolist()} have a non-positive focal length')


def _view_geometry(pre: Preprocessed) -> tuple[ViewGeometry, ...]:
    """Per-view input -> network pixel maps, the same arithmetic as scale_intrinsics."""
    H, W = pre.images.shape[-2:]
    views = []
    for p, (top, left) in zip(pre.plans, pre.crops_ixt, strict=True):
        (h, w), (bh, bw), (nh, nw) = p.input_hw, p.bound_hw, p.network_hw
        sx, sy = bw / w, bh / h
        ox, oy = float(left), float(top)
        if p.two_stage:
            sx, sy = sx * nw / bw, sy * nh / bh
        else:
            ox, oy = ox + p.crop_left, oy + p.crop_top
        views.append(ViewGeometry((h, w), (int(H), int(W)), (sx, sy), (ox, oy)))
    return tuple(views)


def _homogeneous(T: np.ndarray) -> np.ndarray:
    """(S, 3, 4) -> (S, 4, 4) float64."""
    out = np.zeros((len(T), 4, 4))
    out[:, :3] = T
    out[:, 3, 3] = 1.0
    return out


class Predictor:
    """Multi-view DA3 inference with the official pre/post-processing around any Backend.

    backend: TorchBackend, OnnxBackend or TensorRTBackend
    process_res, method: the official resize policy (longest side 504, 'upper_bound_resize')
    ref_view_strategy: reference view for S >= 3 without cameras; None = the backend's default
        (torch: the official 'saddle_balanced'; exported graphs: 'first')
    use_ray_pose: poses from the ray head (torch backend) instead of the camera decoder
    align_to_input_scale: with given extrinsics, return them and rescale depth to their units
        (official default); False maps the given poses into the predicted frame instead
    gpu_preprocess: resize/normalise with torch ops on the backend's device when all views
        share one size (no host round trip; max 1 uint8 step from the exact cv2 path;
        torch.compile'd on CUDA: the first call of a size compiles)
    return_rays: also return the per-pixel rays (torch backend)
    return_descriptors: also return per-view place descriptors (torch backend)
    """

    def __init__(self, backend: Backend, process_res: int = 504,
                 method: str = 'upper_bound_resize', ref_view_strategy: str | None = None,
                 use_ray_pose: bool = False, align_to_input_scale: bool = True,
                 gpu_preprocess: bool = False, return_rays: bool = False,
                 return_descriptors: bool = False):
        if not isinstance(backend, Backend):
            raise ConfigError(f'backend must be a da3_ros Backend, got {type(backend).__name__}')
        check_resize_config(process_res, method)
        strategy = ref_view_strategy or backend.default_ref_view_strategy
        backend.check_options(strategy, use_ray_pose, return_rays, return_descriptors)
        self.backend = backend
        self.process_res, self.method = process_res, method
        self.ref_view_strategy = strategy
        self.use_ray_pose = use_ray_pose
        self.align_to_input_scale = align_to_input_scale
        self.gpu_preprocess = gpu_preprocess
        self.return_rays = return_rays
        self.return_descriptors = return_descriptors

    @property
    def is_metric_model(self) -> bool:
        """DA3METRIC: depth in units of focal / 300 (metres once intrinsics are known)."""
        return self.backend.model_name.startswith('da3metric')

    def network_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """(H, W) the network sees for an input image of (h, w) pixels."""
        return plan_resize(*image_hw, self.process_res, self.method).network_hw

    def predict(self, images, intrinsics=None, extrinsics=None) -> Prediction:
        """Run one multi-view call.

        images: S images (H_v, W_v, 3) uint8 RGB, numpy or torch, any sizes of at least 14 px
            a side (all views are brought to one processing size, as the official: the larger
            ones centre-cropped, see preprocess.mixed_sizes_note); (H, W) grayscale and
            (H, W, 4) RGBA are converted as the official API does; or one (S, H, W, 3) uint8
            tensor, preprocessed with torch ops where it lies (preprocess_torch; compiled on
            CUDA) and then moved to the backend's device
        intrinsics: (S, 3, 3) pinhole K in each input image's pixels, or None
        extrinsics: (S, 4, 4) world -> camera (OpenCV), metres, or None; needs intrinsics.
            With both, any-view models are camera-conditioned and the result comes back in
            the given frame and scale; intrinsics alone only serve a metric model's scaling
            (any-view models predict their own K, as the official API)
        returns Prediction (numpy, host)
        """
        return self.predict_tensors(images, intrinsics, extrinsics).numpy()

    def predict_tensors(self, images, intrinsics=None, extrinsics=None) -> TensorPrediction:
        """`predict`, with depth/confidence/sky left as torch tensors on the backend's device."""
        images = _check_images(images)
        S = len(images)
        K_in = _check_matrices(intrinsics, S, (3, 3), 'intrinsics')
        T_in = _check_matrices(extrinsics, S, (4, 4), 'extrinsics')
        _check_intrinsics(K_in)
        if T_in is not None and K_in is None:
            raise InputError('extrinsics need intrinsics (the camera encoder takes both)')
        pre = self._preprocess(images)
        K_net = None if K_in is None else pre.scale_intrinsics(K_in)
        cameras = (None, None)
        if T_in is not None and self.backend.supports_cameras:
            T_norm, _ = normalize_extrinsics(T_in)
            cameras = (torch.from_numpy(T_norm).float()[None],
                       torch.from_numpy(K_net).float()[None])
        elif T_in is not None and self.backend.is_anyview:
            raise ConfigError(f'the {self.backend.name} model of {self.backend.model_name} was '
                              f'built without camera input; drop the extrinsics or use a '
                              f'camera-conditioned export')
        out = self.backend.infer(pre.images.to(self.backend.device), *cameras,
                                 ref_view_strategy=self.ref_view_strategy,
                                 use_ray_pose=self.use_ray_pose, return_rays=self.return_rays,
                                 return_descriptors=self.return_descriptors)
        return self._postprocess(out, _view_geometry(pre), K_net, T_in)

    def _preprocess(self, images: list | torch.Tensor) -> Preprocessed:
        stacked = isinstance(images, torch.Tensor)
        same_size = stacked or len({tuple(img.shape) for img in images}) == 1
        if stacked or (self.gpu_preprocess and same_size):
            # PIL-backed arrays are read-only; torch wants writable memory to wrap
            stack = images if stacked else torch.stack([
                img if isinstance(img, torch.Tensor) else
                torch.from_numpy(np.array(img, copy=not img.flags.writeable))
                for img in images]).to(self.backend.device)
            x = preprocess_torch_fast(stack, self.process_res, self.method)
            plan = plan_resize(*stack.shape[1:3], self.process_res, self.method)
            zero = ((0, 0),) * len(images)
            return Preprocessed(x, (plan,) * len(images), zero, zero)
        arrays = [img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else img
                  for img in images]
        return preprocess(arrays, self.process_res, self.method)

    def _postprocess(self, out, views, K_net: np.ndarray | None,
                     T_in: np.ndarray | None) -> TensorPrediction:
        S = len(views)
        depth = out.depth[0].float()
        conf = None if out.depth_conf is None else out.depth_conf[0].float()
        sky = None if out.sky is None else out.sky[0] >= SKY_MASK_THRESHOLD
        rays = None if out.ray is None else out.ray[0]
        descriptors = None if out.descriptor is None else out.descriptor[0]
        scale = np.ones(S)
        is_metric = False
        T, K = None, K_net
        if self.backend.is_anyview:
            T = _homogeneous(out.extrinsics[0].detach().double().cpu().numpy())
            K = out.intrinsics[0].detach().double().cpu().numpy()
        if isinstance(self.backend.spec, NestedSpec):
            scale *= float(out.scale_factor)
            is_metric = True
        if self.is_metric_model and K_net is not None:
            focal = (K_net[:, 0, 0] + K_net[:, 1, 1]) / 2 / METRIC_FOCAL_PX
            depth = depth * torch.as_tensor(focal, dtype=depth.dtype,
                                            device=depth.device)[:, None, None]
            scale *= focal
            is_metric = True
        if T_in is not None and self.backend.is_anyview:
            fit = fit_given_to_predicted(T_in, T)
            K = K_net
            if self.align_to_input_scale:
                depth, T = depth / fit.s, T_in
                scale /= fit.s
                is_metric = True
            else:
                T = apply_to_extrinsics(fit, T_in)
        elif T_in is not None:
            T = T_in            # METRIC/MONO predict no poses: the given ones pass through
        return TensorPrediction(depth, conf, T, K, views, sky, rays, is_metric, scale,
                                descriptors)
