"""Global place descriptors from the network's own backbone tokens (no extra network)."""
from __future__ import annotations

import numpy as np

from da3_ros.errors import InputError


def pool_global_descriptor(tokens: np.ndarray) -> np.ndarray:
    """Mean-pool patch tokens and L2-normalise: one descriptor per view.

    tokens: (S, T, C) backbone features, S views, T tokens, C channels
    returns (S, C) float32, unit L2 norm (a zero mean stays zero)
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 3:
        raise InputError(f'tokens must be (S, T, C), got {tokens.shape}')
    mean = tokens.astype(np.float64).mean(axis=1)
    norm = np.linalg.norm(mean, axis=1, keepdims=True)
    return (mean / np.maximum(norm, 1e-12)).astype(np.float32)


def frame_descriptors(view_descriptors: np.ndarray, num_cameras: int) -> np.ndarray:
    """Combine a rig's views into one descriptor per frame.

    view_descriptors: (F * N, D) frame-major, unit norm
    returns (F, D) float32: L2-normalised mean over each frame's N cameras
    """
    S, D = view_descriptors.shape
    if S % num_cameras:
        raise InputError(f'{S} views is not a multiple of {num_cameras} cameras')
    mean = view_descriptors.reshape(S // num_cameras, num_cameras, D).mean(axis=1)
    return (mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)).astype(
        np.float32)
