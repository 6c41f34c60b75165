"""Synthetic scenes for the Nav2 outputs' tests: a ground plane z = 0 and axis-aligned boxes
(obstacles, walls) in the base frame, rendered to z-depth through pinhole cameras by vectorised
ray casting (numpy), and the closed-form nearest obstacle per bearing from the base origin.
Independent of da3_ros's own geometry."""
from __future__ import annotations

import numpy as np

# optical axes (x right, y down, z forward) in a base frame (x forward, y left, z up)
R_BASE_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_pose(x: float, y: float, z: float, yaw: float, pitch_down: float) -> np.ndarray:
    """(4, 4) T_base_cam of an optical frame at (x, y, z) looking along bearing `yaw`, pitched
    down by `pitch_down` (radians)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch_down), np.sin(pitch_down)
    Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])     # +pitch turns x towards -z
    T = np.eye(4)
    T[:3, :3] = Rz @ Ry @ R_BASE_OPTICAL
    T[:3, 3] = x, y, z
    return T


def intrinsics(f: float, W: int, H: int) -> np.ndarray:
    return np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]])


def render_depth(T_base_cam: np.ndarray, K: np.ndarray, H: int, W: int,
                 boxes: np.ndarray) -> np.ndarray:
    """(H, W) float32 z-depth of the ground z = 0 and boxes (B, 6) [x0 y0 z0 x1 y1 z1];
    inf where the ray hits nothing (above the horizon)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d = rays @ T_base_cam[:3, :3].T              # base-frame direction with z_cam = 1
    o = T_base_cam[:3, 3]
    with np.errstate(divide='ignore', invalid='ignore'):
        t = np.where(d[..., 2] < 0, -o[2] / d[..., 2], np.inf)
        for box in boxes:
            lo, hi = (box[:3] - o) / d, (box[3:] - o) / d
            near = np.nanmax(np.minimum(lo, hi), axis=-1)
            far = np.nanmin(np.maximum(lo, hi), axis=-1)
            hit = (near <= far) & (far > 0)
            t = np.where(hit & (np.maximum(near, 0) < t), np.maximum(near, 0), t)
    return t.astype(np.float32)  # t along a ray with z_cam = 1 is the z-depth


def nearest_obstacle(bearings: np.ndarray, boxes: np.ndarray, min_h: float,
                     max_h: float) -> np.ndarray:
    """Horizontal distance from the base origin along each bearing to the nearest box whose
    height span meets [min_h, max_h] (2-D slab test on the footprints); inf where none."""
    d = np.stack([np.cos(bearings), np.sin(bearings)], -1)
    best = np.full(len(bearings), np.inf)
    with np.errstate(divide='ignore', invalid='ignore'):
        for box in boxes:
            if box[5] < min_h or box[2] > max_h:
                continue
            lo, hi = box[:2] / d, box[3:5] / d
            near = np.nanmax(np.minimum(lo, hi), -1)
            far = np.nanmin(np.maximum(lo, hi), -1)
            hit = (near <= far) & (near > 0)
            best = np.where(hit, np.minimum(best, near), best)
    return best


def inside_boxes(points: np.ndarray, boxes: np.ndarray, margin: float) -> np.ndarray:
    """(N,) bool: the point lies within some box grown by margin."""
    p = points[:, None, :]
    return ((p >= boxes[None, :, :3] - margin) & (p <= boxes[None, :, 3:] + margin)).all(-1).any(1)
