"""Umeyama's closed-form similarity between two point sets (IEEE PAMI 1991), optionally weighted.

    R, t, s = umeyama(src, dst)          # dst ~ s * R @ src + t

Equal to `evo.core.geometry.umeyama_alignment(src.T, dst.T, with_scale=True)` for uniform
weights (tested), except that rank-deficient layouts raise deterministically (RANK_RTOL).
Written here rather than imported because evo's install pulls matplotlib, pandas, seaborn and
scipy, too much for a robot's runtime; evo stays the test reference.
"""
from __future__ import annotations

import numpy as np

from da3_ros.errors import Da3RosError

RANK_RTOL = 1e-10     # second singular value below this fraction of the first: rank < 2


class DegenerateAlignment(Da3RosError):
    """The points do not determine a rotation (fewer than 2 independent directions)."""


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None,
            with_scale: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares similarity mapping src onto dst.

    src, dst: (N, 3) corresponding points (any consistent units)
    weights: (N,) non-negative weights, or None for uniform
    with_scale: estimate the scale; False fixes s = 1 (rigid)
    returns R (3, 3) rotation, t (3,), s: dst_i ~ s * R @ src_i + t minimising the weighted sum
        of squared residuals. Raises DegenerateAlignment when the weighted cross-covariance has
        rank < 2 (N < 3, collinear or coincident points).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f'src and dst must both be (N, 3), got {src.shape} and {dst.shape}')
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (len(src),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError('weights must be (N,), non-negative, with a positive sum')
    w = w / w.sum()
    mean_src, mean_dst = w @ src, w @ dst
    src_c, dst_c = src - mean_src, dst - mean_dst
    var_src = float(w @ (src_c ** 2).sum(axis=1))
    cov = (dst_c * w[:, None]).T @ src_c           # (3, 3), sum_i w_i dst_i src_i^T
    u, d, vt = np.linalg.svd(cov)
    # evo tests d > machine eps, which rounding noise passes for two points or a line; a
    # relative test rejects those layouts (their rotation is undetermined) deterministically.
    if d[1] <= RANK_RTOL * d[0]:
        raise DegenerateAlignment('degenerate covariance rank, Umeyama alignment is not possible')
    flip = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        flip[2, 2] = -1                              # keep a proper rotation (Kabsch)
    R = u @ flip @ vt
    s = float(np.trace(np.diag(d) @ flip) / var_src) if with_scale else 1.0
    return R, mean_dst - s * R @ mean_src, s
