"""Robust, confidence-weighted Sim(3) between two predictions of the same frames.

Both chunks predicted depth for the same images, so the same pixel of the same view is a
correspondence. Residuals are divided by the target depth, so the Cauchy
kernel means "a few percent of the range" near and far alike (the reference's absolute
0.1 m Huber lets far points dominate).

With the source depths given, the scale comes from the same-pixel depth ratios alone and
only R, t from the points: a depth ratio involves no camera pose, so the chunk's pose
errors (a translation scale that drifts across the chunk, rotation walk) cannot leak into
the scale, which is what the pose graph cannot recover without loops.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from da3_ros.errors import ConfigError
from da3_ros.geometry.sim3 import Sim3
from da3_ros.geometry.umeyama import DegenerateAlignment, umeyama


@dataclass(frozen=True)
class AlignConfig:
    cauchy_rel: float = 0.05      # Cauchy scale of the depth-relative residual
    iterations: int = 10          # IRLS re-weightings after the confidence-only start
    inlier_rel: float = 0.1       # relative residual below this counts as an inlier
    conf_floor: float = 0.1       # keep pixels with conf > conf_floor * median conf (both sides)
    min_points: int = 30
    max_points: int = 10000       # strided subsample above this (cost, not accuracy, bound)
    depth_scale: bool = True      # scale from depth ratios when source depths are given

    def __post_init__(self):
        if self.cauchy_rel <= 0 or self.inlier_rel <= 0 or self.iterations < 1:
            raise ConfigError(f'invalid AlignConfig {self}')


@dataclass(frozen=True)
class Alignment:
    """T_dst_src with its quality.

    T_dst_src: maps source-prediction points into the target prediction's frame
    inlier_ratio: fraction of valid pairs with relative residual < inlier_rel
    median_rel_residual: median of |s R a + t - b| / depth_b over valid pairs
    num_points: valid pairs used
    """

    T_dst_src: Sim3
    inlier_ratio: float
    median_rel_residual: float
    num_points: int


def depth_ratio_scale(ratio: np.ndarray, weight: np.ndarray, cfg: AlignConfig) -> float:
    """Robust scale from same-pixel depth ratios dst / src (N,) > 0 with weights (N,):
    weighted median start, then Cauchy IRLS on the log ratio."""
    log_r = np.log(ratio)
    order = np.argsort(log_r)
    cum = np.cumsum(weight[order])
    mu = float(log_r[order][np.searchsorted(cum, 0.5 * cum[-1])])
    for _ in range(cfg.iterations):
        w = weight / (1.0 + ((log_r - mu) / cfg.cauchy_rel) ** 2)
        mu = float(np.sum(w * log_r) / np.sum(w))
    return float(np.exp(mu))


def align_points(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, depth_dst: np.ndarray,
                 cfg: AlignConfig, depth_src: np.ndarray | None = None) -> Alignment | None:
    """IRLS with a Cauchy kernel on depth-relative residuals, Umeyama at every step.

    src, dst: (N, 3) corresponding points (source / target frame units)
    weight: (N,) prior weights (confidence), > 0 for usable pairs
    depth_dst: (N,) target z-depth of each pair (> 0), target units
    depth_src: (N,) source z-depth of each pair (source units); with cfg.depth_scale the
        scale is fixed from depth_dst / depth_src and the fit is rigid on the scaled source
    returns None if fewer than cfg.min_points usable pairs or a degenerate geometry
    """
    ok = (weight > 0) & np.isfinite(src).all(1) & np.isfinite(dst).all(1) & (depth_dst > 0)
    fixed = depth_src is not None and cfg.depth_scale
    if fixed:
        ok &= np.isfinite(depth_src) & (depth_src > 0)
    if ok.sum() < cfg.min_points:
        return None
    stride = max(1, int(ok.sum()) // cfg.max_points)
    src, dst, w0, z = src[ok][::stride], dst[ok][::stride], weight[ok][::stride], depth_dst[ok][
        ::stride]
    s_fixed = depth_ratio_scale(z / depth_src[ok][::stride], w0, cfg) if fixed else 1.0
    w = w0
    try:
        for _ in range(cfg.iterations + 1):
            if fixed:
                R, t, _ = umeyama(s_fixed * src, dst, w, with_scale=False)
                s = s_fixed
            else:
                R, t, s = umeyama(src, dst, w)
            rel = np.linalg.norm(s * src @ R.T + t - dst, axis=1) / z
            w = w0 / (1.0 + (rel / cfg.cauchy_rel) ** 2)
    except DegenerateAlignment:
        return None
    return Alignment(Sim3(s, R, t), float(np.mean(rel < cfg.inlier_rel)),
                     float(np.median(rel)), int(len(src)))


def pair_weights(conf_src: np.ndarray, conf_dst: np.ndarray, floor: float) -> np.ndarray:
    """sqrt(c_src * c_dst) where both exceed floor * their median positive conf, else 0."""
    def keep(c):
        positive = c[c > 0]
        return c > (floor * np.median(positive) if len(positive) else np.inf)
    return np.where(keep(conf_src) & keep(conf_dst), np.sqrt(conf_src * conf_dst), 0.0)


def align_samples(src_pts, dst_pts, src_conf, dst_conf, dst_depth,
                  cfg: AlignConfig, src_depth=None) -> Alignment | None:
    """Align flattened per-pixel samples (any leading shape, last axis 3 for points)."""
    w = pair_weights(src_conf.ravel(), dst_conf.ravel(), cfg.conf_floor)
    zs = None if src_depth is None else np.asarray(src_depth, np.float64).ravel()
    return align_points(src_pts.reshape(-1, 3), dst_pts.reshape(-1, 3), w,
                        dst_depth.ravel().astype(np.float64), cfg, zs)
