"""Scale of given extrinsics relative to predicted ones (official API).

The official `align_poses_umeyama(predicted, given, ransac=S >= 10, random_state=42)` fits a
Sim(3) on camera centres that maps the *given* poses onto the *predicted* ones; its scale s
turns predicted depth into the given units (depth / s). This module reproduces it, RANSAC and
random-number order included, and replaces its failures on degenerate centre layouts (S = 2,
collinear rigs; the official raises) by the ratio of centre spreads, which is the scale of any
similarity between the two sets.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from da3_ros.geometry.umeyama import DegenerateAlignment, umeyama

log = logging.getLogger(__name__)

RANSAC_MIN_VIEWS = 10
RANSAC_ITERS = 10
RANSAC_SEED = 42


@dataclass(frozen=True)
class Sim3Fit:
    """given centre c maps to predicted centre s * R @ c + t (camera-to-world positions)."""

    R: np.ndarray
    t: np.ndarray
    s: float
    method: str           # 'umeyama', 'ransac', 'spread' (degenerate layout) or 'none' (S = 1)


def camera_centres(T_cam_world: np.ndarray) -> np.ndarray:
    """(S, 3|4, 4) world -> camera -> (S, 3) camera centres in the world frame: -R^T t."""
    R, t = T_cam_world[:, :3, :3], T_cam_world[:, :3, 3]
    return -np.einsum('sji,sj->si', R, t)


def _spread_fit(given: np.ndarray, predicted: np.ndarray) -> Sim3Fit:
    """Scale from the RMS distance to the centroid; identity rotation (unused by callers)."""
    spread_g = np.linalg.norm(given - given.mean(0), axis=1)
    spread_p = np.linalg.norm(predicted - predicted.mean(0), axis=1)
    if spread_g.max() <= 1e-12:
        log.warning('given camera centres coincide; depth scale left unchanged')
        return Sim3Fit(np.eye(3), predicted.mean(0) - given.mean(0), 1.0, 'none')
    s = float(np.sqrt((spread_p ** 2).sum() / (spread_g ** 2).sum()))
    return Sim3Fit(np.eye(3), predicted.mean(0) - s * given.mean(0), s, 'spread')


def _ransac(given: np.ndarray, predicted: np.ndarray) -> Sim3Fit:
    """The official `_ransac_align_sim3` with its defaults (sub_n, threshold, 10 iterations)."""
    rng = np.random.default_rng(RANSAC_SEED)
    n = len(given)
    sub_n = max(3, (n + 1) // 2)
    R0, t0, s0 = umeyama(given, predicted)
    aligned0 = s0 * given @ R0.T + t0
    # threshold: median distance of each pre-aligned centre to its nearest predicted centre
    nearest = np.linalg.norm(aligned0[:, None] - predicted[None], axis=-1).min(axis=1)
    threshold = float(np.median(nearest))
    best, best_inliers, best_score = (R0, t0, s0), None, (-1, np.inf)
    for _ in range(RANSAC_ITERS):
        sample = rng.choice(np.arange(n), size=sub_n, replace=False)
        try:
            R, t, s = umeyama(given[sample], predicted[sample])
        except DegenerateAlignment:
            continue
        errors = np.linalg.norm(s * given @ R.T + t - predicted, axis=1)
        inliers = errors <= threshold
        k = int(inliers.sum())
        mean_error = float(errors[inliers].mean()) if k else np.inf
        if k > best_score[0] or (k == best_score[0] and mean_error < best_score[1]):
            best, best_inliers, best_score = (R, t, s), inliers, (k, mean_error)
    if best_inliers is not None and best_inliers.sum() >= 3:
        best = umeyama(given[best_inliers], predicted[best_inliers])
    return Sim3Fit(*best[:2], float(best[2]), 'ransac')


def fit_given_to_predicted(T_given: np.ndarray, T_predicted: np.ndarray) -> Sim3Fit:
    """Sim(3) taking the given camera centres onto the predicted ones.

    T_given, T_predicted: (S, 3|4, 4) world -> camera (OpenCV); units: given in the caller's
        (usually metres), predicted in the network's
    returns Sim3Fit; S >= 10 uses the official RANSAC (seed 42), 3 <= S < 10 plain Umeyama,
        S = 2 or a degenerate layout the centre-spread ratio, S = 1 scale 1 (no information)
    """
    given, predicted = camera_centres(T_given), camera_centres(T_predicted)
    if len(given) == 1:
        return Sim3Fit(np.eye(3), predicted[0] - given[0], 1.0, 'none')
    if len(given) == 2:      # the official raises (issue #241): rotation is undetermined
        return _spread_fit(given, predicted)
    try:
        if len(given) >= RANSAC_MIN_VIEWS:
            return _ransac(given, predicted)
        return Sim3Fit(*umeyama(given, predicted), 'umeyama')
    except DegenerateAlignment:
        return _spread_fit(given, predicted)


def apply_to_extrinsics(fit: Sim3Fit, T_given: np.ndarray) -> np.ndarray:
    """(S, 4, 4) given world -> camera mapped into the predicted world frame (official
    `align_to_input_ext_scale=False` output): camera pose P -> [R Rp, s R c + t]."""
    T = np.asarray(T_given, np.float64)
    R_wc = np.swapaxes(T[:, :3, :3], -1, -2)
    centres = camera_centres(T)
    R_new = fit.R @ R_wc
    c_new = fit.s * centres @ fit.R.T + fit.t
    out = np.zeros((len(T), 4, 4))
    out[:, :3, :3] = np.swapaxes(R_new, -1, -2)
    out[:, :3, 3] = -np.einsum('sij,sj->si', out[:, :3, :3], c_new)
    out[:, 3, 3] = 1.0
    return out
