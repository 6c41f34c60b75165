"""Prediction: what every backend returns for one multi-view call.

Arrays are per view, at the network's processing resolution (H, W); the bookkeeping that maps
them back to each input image is kept alongside (`views`). `Prediction` holds numpy arrays on
the host; `TensorPrediction` is the same record with torch tensors left on the device the
network ran on (the GPU path: no host round trip until the caller copies).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np

from da3_ros.errors import InputError


@dataclass(frozen=True)
class ViewGeometry:
    """How one input image maps to the network input.

    input_hw: (H_in, W_in) pixels of the image given by the caller
    network_hw: (H, W) pixels of the network input
    scale_xy: network pixels per input pixel, x and y (after all resize stages)
    offset_xy: network-pixel offset of the crop: u_net = u_in * scale_x - offset_x, in the
        pixel convention of the intrinsics (no half-pixel shift, as the official scaling)
    """

    input_hw: tuple[int, int]
    network_hw: tuple[int, int]
    scale_xy: tuple[float, float]
    offset_xy: tuple[float, float]

    def intrinsics_to_input(self, K: np.ndarray) -> np.ndarray:
        """(3, 3) pixels of the network input -> (3, 3) pixels of the input image."""
        sx, sy = self.scale_xy
        ox, oy = self.offset_xy
        to_net = np.array([[sx, 0.0, -ox], [0.0, sy, -oy], [0.0, 0.0, 1.0]])
        return np.linalg.solve(to_net, K)

    def nearest_input_pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows (H,), cols (W,)) int64: the input pixel nearest each network pixel (the
        inverse of u_net = u_in * sx - ox, rounded half to even), clipped to the image."""
        H, W = self.network_hw
        cols = np.rint((np.arange(W) + self.offset_xy[0]) / self.scale_xy[0]).astype(np.int64)
        rows = np.rint((np.arange(H) + self.offset_xy[1]) / self.scale_xy[1]).astype(np.int64)
        return np.clip(rows, 0, self.input_hw[0] - 1), np.clip(cols, 0, self.input_hw[1] - 1)

    def resample_to_input(self, image: np.ndarray, linear: bool = False) -> np.ndarray:
        """(H, W) float32 at the network resolution -> (H_in, W_in) float32 at the input
        resolution; input pixels outside the crop get NaN.

        Input pixel (u, v) samples the network image at (u * sx - ox, v * sy - oy), the map
        under which `intrinsics_to_input` holds, so a resampled depth back-projects through the
        input intrinsics to the same 3-D points. Nearest neighbour by default (no mixing of
        depths across object edges); linear=True interpolates.
        """
        H, W = self.network_hw
        if image.shape != (H, W):
            raise InputError(f'image must be ({H}, {W}), got {image.shape}')
        h_in, w_in = self.input_hw
        map_x = (np.arange(w_in, dtype=np.float32) * self.scale_xy[0] - self.offset_xy[0])
        map_y = (np.arange(h_in, dtype=np.float32) * self.scale_xy[1] - self.offset_xy[1])
        map_x, map_y = np.broadcast_to(map_x, (h_in, w_in)), np.broadcast_to(map_y[:, None],
                                                                             (h_in, w_in))
        mode = cv2.INTER_LINEAR if linear else cv2.INTER_NEAREST
        out = cv2.remap(np.ascontiguousarray(image, np.float32), np.ascontiguousarray(map_x),
                        np.ascontiguousarray(map_y), mode, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=float('nan'))
        outside = (map_x < -0.5) | (map_x > W - 0.5) | (map_y < -0.5) | (map_y > H - 0.5)
        out[outside] = np.nan
        return out


@dataclass(frozen=True)
class Prediction:
    """One call's result, S views, numpy on the host.

    depth: (S, H, W) float32, z-depth along the optical axis; metres if is_metric
    confidence: (S, H, W) float32 or None (METRIC/MONO have none); larger is better (> 1)
    T_cam_world: (S, 4, 4) float64 world -> camera (OpenCV axes), or None (METRIC/MONO without
        given extrinsics); world = the first view unless extrinsics were given, then theirs
    K: (S, 3, 3) float64 pixels of the network input (H x W), or None (METRIC/MONO without
        given intrinsics)
    views: per-view ViewGeometry to map back to the input images
    sky: (S, H, W) bool or None (True = sky; METRIC/MONO only)
    rays: (S, h, w, 6) float32 or None, only on request (torch backend)
    descriptors: (S, C) float32 unit-norm place descriptors from the backbone, or None (only
        on request, torch backend; used for loop retrieval)
    is_metric: depth and translations are in metres (metric model with intrinsics, NESTED, or
        aligned to given extrinsics in metres)
    depth_scale: (S,) float64 factor already applied to the network's raw depth (focal/300 of a
        metric model, NESTED scale, 1/s of the alignment to given extrinsics; 1.0 if none)
    """

    depth: np.ndarray
    confidence: np.ndarray | None
    T_cam_world: np.ndarray | None
    K: np.ndarray | None
    views: tuple[ViewGeometry, ...]
    sky: np.ndarray | None = None
    rays: np.ndarray | None = None
    is_metric: bool = False
    depth_scale: np.ndarray | None = None
    descriptors: np.ndarray | None = None

    def __post_init__(self):
        S = len(self.views)
        if self.depth.ndim != 3 or self.depth.shape[0] != S:
            raise InputError(f'depth must be ({S}, H, W), got {self.depth.shape}')
        for name, shape in (('T_cam_world', (S, 4, 4)), ('K', (S, 3, 3)),
                            ('confidence', self.depth.shape), ('sky', self.depth.shape)):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise InputError(f'{name} must be {shape}, got {tuple(value.shape)}')

    @property
    def num_views(self) -> int:
        return len(self.views)

    def K_input(self, view: int) -> np.ndarray:
        """(3, 3) intrinsics of view `view` expressed in its input image's pixels."""
        if self.K is None:
            raise InputError('this prediction has no intrinsics (METRIC/MONO without given K)')
        return self.views[view].intrinsics_to_input(self.K[view])

    def depth_at_input(self, view: int, linear: bool = False) -> np.ndarray:
        """(H_in, W_in) float32 depth of view `view` at its input resolution (NaN outside the
        crop); consistent with K_input(view)."""
        return self.views[view].resample_to_input(self.depth[view], linear)


@dataclass(frozen=True)
class TensorPrediction:
    """`Prediction` with torch tensors on the network's device (same fields and shapes)."""

    depth: object
    confidence: object
    T_cam_world: object
    K: object
    views: tuple[ViewGeometry, ...]
    sky: object = None
    rays: object = None
    is_metric: bool = False
    depth_scale: object = None
    descriptors: object = None

    def numpy(self) -> Prediction:
        """Copy to the host: float32 images, float64 cameras, bool sky."""
        def host(name, value):
            if value is None or not hasattr(value, 'detach'):
                return value
            array = value.detach().cpu().numpy()
            if name in ('T_cam_world', 'K', 'depth_scale'):
                return array.astype(np.float64)
            return array if name == 'sky' else array.astype(np.float32, copy=False)
        return Prediction(**{f.name: host(f.name, getattr(self, f.name)) for f in fields(self)})
