"""Prediction: what every backend returns for one multi-view call (ARCHITECTURE.md §2).

All arrays are numpy on the host, per view, at the network's processing resolution; the
bookkeeping to map them back to each input image is kept alongside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from da3_ros.errors import InputError


@dataclass(frozen=True)
class ViewGeometry:
    """How one input image maps to the network input.

    input_hw: (H_in, W_in) pixels of the image given by the caller
    network_hw: (H, W) pixels of the network input
    scale_xy: network pixels per input pixel, x and y (after all resize stages)
    offset_xy: network-pixel offset of the crop: u_net = u_in * scale_x - offset_x
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


@dataclass(frozen=True)
class Prediction:
    """One call's result, S views.

    depth: (S, H, W) float32, z-depth along the optical axis; metres if is_metric
    confidence: (S, H, W) float32 or None (METRIC/MONO have none); larger is better
    T_cam_world: (S, 4, 4) float64, world -> camera (OpenCV axes); world = reference view
    K: (S, 3, 3) float64, pixels of the network input (H x W)
    views: per-view ViewGeometry to map back to the input images
    sky: (S, H, W) bool or None (True = sky)
    is_metric: depth and translations are in metres
    scale_factor: factor already applied to raw depth and translations (1.0 if none)
    """

    depth: np.ndarray
    confidence: np.ndarray | None
    T_cam_world: np.ndarray
    K: np.ndarray
    views: tuple[ViewGeometry, ...]
    sky: np.ndarray | None = None
    is_metric: bool = False
    scale_factor: float = 1.0

    def __post_init__(self):
        S = len(self.views)
        if self.depth.ndim != 3 or self.depth.shape[0] != S:
            raise InputError(f'depth must be ({S}, H, W), got {self.depth.shape}')
        if self.T_cam_world.shape != (S, 4, 4) or self.K.shape != (S, 3, 3):
            raise InputError(f'poses/intrinsics must be ({S},4,4)/({S},3,3), got '
                             f'{self.T_cam_world.shape}/{self.K.shape}')

    @property
    def num_views(self) -> int:
        return len(self.views)

    def K_input(self, view: int) -> np.ndarray:
        """(3, 3) intrinsics of view `view` expressed in its input image's pixels."""
        return self.views[view].intrinsics_to_input(self.K[view])
