"""Official in-network post-processing that needs data-dependent statistics (host side).

Sky fill of the monocular heads and the NESTED metric alignment. Both sample at random exactly
as the official code does (same calls, same order), so seeded runs agree with it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from da3_ros.errors import InputError

SKY_THRESHOLD = 0.3          # sky score >= 0.3 is sky
MAX_QUANTILE_SAMPLES = 100_000
MIN_REGION_PX = 10
METRIC_FOCAL_PX = 300.0      # DA3METRIC depth is in units of focal / 300
NESTED_MAX_SKY_DEPTH_M = 200.0


def _subsample_randint(values: Tensor) -> Tensor:
    if values.numel() <= MAX_QUANTILE_SAMPLES:
        return values
    idx = torch.randint(0, values.numel(), (MAX_QUANTILE_SAMPLES,), device=values.device)
    return values[idx]


def _subsample_randperm(values: Tensor) -> Tensor:
    if values.numel() <= MAX_QUANTILE_SAMPLES:
        return values
    idx = torch.randperm(values.numel(), device=values.device)[:MAX_QUANTILE_SAMPLES]
    return values.flatten()[idx]


def fill_sky(depth: Tensor, sky: Tensor) -> Tensor:
    """Set sky pixels to the 0.99 quantile of non-sky depth, over the whole batch.

    depth, sky: (B, S, H, W); unchanged when sky or non-sky has <= 10 pixels
    """
    non_sky = sky < SKY_THRESHOLD
    if non_sky.sum() <= MIN_REGION_PX or (~non_sky).sum() <= MIN_REGION_PX:
        return depth
    far = torch.quantile(_subsample_randint(depth[non_sky]), 0.99)
    return torch.where(non_sky, depth, far)


def metric_depth_from_focal(depth: Tensor, K: Tensor) -> Tensor:
    """DA3METRIC output -> metres: depth * ((fx + fy) / 2) / 300; depth (B,S,H,W), K (B,S,3,3)."""
    focal_px = (K[..., 0, 0] + K[..., 1, 1]) / 2
    return depth * (focal_px[..., None, None] / METRIC_FOCAL_PX)


def nested_scale(depth: Tensor, depth_conf: Tensor, metric_depth: Tensor, sky: Tensor) -> Tensor:
    """Least-squares scale s (0-d tensor) with metric_depth ~ s * depth over confident non-sky
    pixels (confidence >= its non-sky median)."""
    non_sky = sky < SKY_THRESHOLD
    if non_sky.sum() <= MIN_REGION_PX:
        raise InputError('NESTED metric alignment needs more than 10 non-sky pixels')
    median_conf = torch.quantile(_subsample_randperm(depth_conf[non_sky]), 0.5)
    mask = (depth_conf >= median_conf) & non_sky & (metric_depth > 1e-2) & (depth > 1e-3)
    valid, metric = depth[mask], metric_depth[mask]
    return torch.dot(metric, valid) / torch.dot(valid, valid).clamp_min(1e-12)


def nested_sky_fill(depth: Tensor, depth_conf: Tensor, sky: Tensor) -> tuple[Tensor, Tensor]:
    """Sky pixels get min(q99 of non-sky depth, 200 m) and confidence 1.0 (expp1's floor)."""
    non_sky = sky < SKY_THRESHOLD
    far = torch.quantile(_subsample_randint(depth[non_sky]), 0.99).clamp_max(
        NESTED_MAX_SKY_DEPTH_M)
    return (torch.where(non_sky, depth, far),
            torch.where(non_sky, depth_conf, torch.ones_like(depth_conf)))
