"""Depth -> packed point records with torch ops, on the depth's device (the GPU path).

One record per kept pixel, 5 float32 words: x, y, z (metres or model units, camera optical
frame), rgb (PCL's 0x00RRGGBB bits stored in a float32 word) and confidence; the same layout
as `da3_ros.ros.pointcloud.points_to_cloud`, so the bytes go into a PointCloud2 unchanged after
one device-to-host copy.
"""
from __future__ import annotations

import torch
from torch import Tensor

RECORD_WORDS = 5      # x, y, z, rgb, confidence


def pack_points(depth: Tensor, K: Tensor, rgb: Tensor, confidence: Tensor | None = None,
                sky: Tensor | None = None, min_confidence: float | None = None,
                min_range_m: float = 0.0, max_range_m: float = float('inf'),
                stride: int = 1) -> Tensor:
    """Back-project one view and pack its points.

    depth: (H, W) float z-depth along the optical axis; non-finite or <= 0 is dropped
    K: (3, 3) intrinsics in pixels of depth (u = column index, v = row index)
    rgb: (H, W, 3) uint8 colours aligned with depth
    confidence: (H, W) float or None (then records have 4 words, as points_to_cloud without
        confidence); min_confidence drops points below it
    sky: (H, W) bool, True = sky (dropped), or None
    min_range_m, max_range_m: Euclidean distance limits from the camera centre
    stride: keep every stride-th row and column
    returns (N, 5) float32 (N, 4 without confidence) on depth's device, row-major pixel order
    """
    d = depth[::stride, ::stride].float()
    h, w = d.shape
    v, u = torch.meshgrid(torch.arange(0, depth.shape[0], stride, device=d.device),
                          torch.arange(0, depth.shape[1], stride, device=d.device),
                          indexing='ij')
    pix = torch.stack([u, v, torch.ones_like(u)], -1).to(torch.float64)
    rays = (pix @ torch.linalg.inv(K.to(d.device, torch.float64)).T).float()
    xyz = rays * d[..., None]
    keep = torch.isfinite(d) & (d > 0)
    distance = xyz.norm(dim=-1)
    keep &= (distance >= min_range_m) & (distance <= max_range_m)
    conf = (torch.ones_like(d) if confidence is None
            else confidence[::stride, ::stride].float())
    if confidence is not None and min_confidence is not None:
        keep &= conf >= min_confidence
    if sky is not None:
        keep &= ~sky[::stride, ::stride]
    c = rgb[::stride, ::stride].to(torch.int32)
    bits = (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
    record = torch.cat([xyz, bits.view(torch.float32)[..., None], conf[..., None]], dim=-1)
    record = record.reshape(h * w, RECORD_WORDS)[keep.reshape(-1)]
    return record if confidence is not None else record[:, :4]


def pack_points_batch(depth: Tensor, K: Tensor, rgb: Tensor, confidence: Tensor | None = None,
                      sky: Tensor | None = None, min_confidence: float | None = None,
                      min_range_m: float = 0.0, max_range_m: float = float('inf'),
                      stride: int = 1) -> tuple[Tensor, Tensor]:
    """`pack_points` for S views at once: one set of kernels and one compaction for the rig.

    depth: (S, H, W); K: (S, 3, 3); rgb: (S, H, W, 3) uint8; confidence, sky: (S, H, W) or None
    returns (records (N, 5|4) float32, counts (S,) int64 on the host): view v's records are
    records[counts[:v].sum():counts[:v + 1].sum()], each equal to pack_points of that view
    """
    d = depth[:, ::stride, ::stride].float()
    S, h, w = d.shape
    v, u = torch.meshgrid(torch.arange(0, depth.shape[1], stride, device=d.device),
                          torch.arange(0, depth.shape[2], stride, device=d.device),
                          indexing='ij')
    pix = torch.stack([u, v, torch.ones_like(u)], -1).to(torch.float64)      # (h, w, 3)
    K_inv = torch.linalg.inv(K.to(d.device, torch.float64))                   # (S, 3, 3)
    rays = torch.einsum('hwj,sij->shwi', pix, K_inv).float()
    xyz = rays * d[..., None]
    distance = xyz.norm(dim=-1)
    keep = torch.isfinite(d) & (d > 0) & (distance >= min_range_m) & (distance <= max_range_m)
    conf = (torch.ones_like(d) if confidence is None
            else confidence[:, ::stride, ::stride].float())
    if confidence is not None and min_confidence is not None:
        keep &= conf >= min_confidence
    if sky is not None:
        keep &= ~sky[:, ::stride, ::stride]
    c = rgb[:, ::stride, ::stride].to(torch.int32)
    bits = (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
    record = torch.cat([xyz, bits.view(torch.float32)[..., None], conf[..., None]], dim=-1)
    keep = keep.reshape(S, h * w)
    counts = keep.sum(dim=1).cpu()
    record = record.reshape(S * h * w, RECORD_WORDS)[keep.reshape(-1)]
    return (record if confidence is not None else record[:, :4]), counts
