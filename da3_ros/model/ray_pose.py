"""Cameras from DA3's ray maps (`use_ray_pose=True`): weighted RANSAC homography + QL split.

Host-side post-processing (RANSAC, SVD, QR are not exportable). It follows the official
algorithm step for step, including the order in which it draws random numbers, so a seeded run
reproduces the official result.
"""
from __future__ import annotations

import torch
from torch import Tensor

from da3_ros.model.camera import invert_rigid

_N_HYPOTHESES = 100
_MINIMAL_SET = 8
_CANDIDATE_RATIO = 0.3
_INLIER_PX = 0.2          # in canonical [-1, 1] plane units
_MAX_REFIT_POINTS = 8000
_REFIT_KEEP = 0.95
_MIN_ABS_Z = 1e-4
_CHUNK = 2                # the official code solves items two at a time


def canonical_plane(h: int, w: int, device=None) -> Tensor:
    """(h*w, 3) pixel centres (x, y, 1) of an identity camera on a 2 x 2 image, row-major."""
    # Same float path as the official code: linspace over [0, 2] pixel centres, then shift by -1.
    half_y, half_x = 1 - 1 / h, 1 - 1 / w
    ys = torch.linspace(-half_y + 1.0, half_y + 1.0, h, dtype=torch.float32, device=device) - 1
    xs = torch.linspace(-half_x + 1.0, half_x + 1.0, w, dtype=torch.float32, device=device) - 1
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([xx, yy, torch.ones_like(xx)], dim=-1).reshape(-1, 3)


def _dlt_rows(src: Tensor, dst: Tensor, weight: Tensor) -> Tensor:
    """Weighted DLT system (..., 2K, 9) for src -> dst (..., K, 2) with weights (..., K)."""
    w = weight.sqrt()[..., None]
    x, y, u, v = src[..., 0:1], src[..., 1:2], dst[..., 0:1], dst[..., 1:2]
    zero = torch.zeros_like(x)
    rows_u = torch.cat([-x * w, -y * w, -w, zero, zero, zero, x * u * w, y * u * w, u * w], -1)
    rows_v = torch.cat([zero, zero, zero, -x * w, -y * w, -w, x * v * w, y * v * w, v * w], -1)
    return torch.cat([rows_u, rows_v], dim=-2)


def _solve_homography(rows: Tensor) -> Tensor:
    """Null vector of (..., 2K, 9) -> (..., 3, 3) homographies with H[2, 2] = 1."""
    H = torch.linalg.svd(rows)[2][..., -1, :].reshape(rows.shape[:-2] + (3, 3))
    return H / H[..., 2:3, 2:3]


def _ransac(src: Tensor, dst: Tensor, weight: Tensor, samples: Tensor,
            n_candidates: int) -> Tensor:
    """Best homography per item: src/dst (B, N, 2), weight (B, N), samples (100, 8) indices
    into the n_candidates best-weighted points -> (B, 3, 3)."""
    B, N, _ = src.shape
    candidates = torch.argsort(weight, descending=True, dim=1)[:, :n_candidates]
    picks = candidates[:, samples]                                    # (B, 100, 8)
    item = torch.arange(B, device=src.device)[:, None, None]
    hypotheses = _solve_homography(_dlt_rows(src[item, picks], dst[item, picks],
                                             weight[item, picks]).flatten(0, 1))
    src_h = torch.cat([src, torch.ones(B, N, 1, dtype=src.dtype, device=src.device)], dim=2)
    proj = torch.bmm(src_h.unsqueeze(1).expand(B, _N_HYPOTHESES, N, 3).reshape(-1, N, 3),
                     hypotheses.transpose(1, 2))
    error = ((proj[..., :2] / proj[..., 2:3]).reshape(B, _N_HYPOTHESES, N, 2)
             - dst[:, None]).square().sum(-1).sqrt()
    inliers = error < _INLIER_PX
    best = (inliers * weight[:, None]).sum(-1).argmax(dim=1)
    refits = []
    for b in range(B):   # inlier sets are ragged; each draws its own random subset
        mask = inliers[b, best[b]]
        s, d, wt = src[b][mask], dst[b][mask], weight[b][mask]
        order = torch.argsort(wt, descending=True)
        if len(order) > _MAX_REFIT_POINTS:
            order = order[:max(int(len(order) * _REFIT_KEEP), _MAX_REFIT_POINTS)]
            order = order[torch.randperm(len(order), device=src.device)[:_MAX_REFIT_POINTS]]
        refits.append(_solve_homography(_dlt_rows(s[order], d[order], wt[order])))
    return torch.stack(refits)


def _ql(A: Tensor) -> tuple[Tensor, Tensor]:
    """A (3, 3) = Q L with Q orthogonal and L lower triangular with a positive diagonal."""
    P = torch.tensor([[0, 0, 1], [0, 1, 0], [1, 0, 0]], device=A.device).float()
    Q_t, R_t = torch.linalg.qr(A @ P)
    Q, L = Q_t @ P, P @ R_t @ P
    sign = torch.sign(torch.diag(L))
    return Q * sign[None, :], L * sign[:, None]


def rays_to_cameras(ray: Tensor, ray_conf: Tensor, image_hw: tuple[int, int]
                    ) -> tuple[Tensor, Tensor]:
    """Camera poses and intrinsics from ray maps.

    ray: (B, S, h, w, 6) directions xyz + origins xyz in the world (reference) frame
    ray_conf: (B, S, h, w) weights (> 0)
    returns T_cam_world (B, S, 3, 4) w2c and K (B, S, 3, 3) in pixels of image_hw = (H, W)
    """
    B, S, h, w, _ = ray.shape
    N = h * w
    n_candidates = max(_MINIMAL_SET, int(N * _CANDIDATE_RATIO))
    samples = torch.stack([torch.randperm(n_candidates, device=ray.device)[:_MINIMAL_SET]
                           for _ in range(_N_HYPOTHESES)])
    rays = ray.reshape(B * S, N, 6)
    plane = canonical_plane(h, w, ray.device)[None].expand(B * S, N, 3)
    direction = rays[..., :3]
    valid = (direction[..., 2].abs() > _MIN_ABS_Z) & (plane[..., 2].abs() > _MIN_ABS_Z)
    src = torch.where(valid[..., None], plane[..., :2] / plane[..., 2:3], plane[..., :2])
    dst = torch.where(valid[..., None], direction[..., :2] / direction[..., 2:3],
                      direction[..., :2])
    weight = torch.where(valid, ray_conf.reshape(B * S, N), torch.zeros_like(direction[..., 2]))
    A = torch.cat([_ransac(src[i:i + _CHUNK], dst[i:i + _CHUNK], weight[i:i + _CHUNK], samples,
                           n_candidates) for i in range(0, B * S, _CHUNK)])
    A = torch.where((torch.linalg.det(A) < 0)[:, None, None], -A, A)
    rotations, lowers = zip(*(_ql(a) for a in A), strict=True)
    L = torch.stack(lowers)
    L = L / L[:, 2:3, 2:3]
    focal = 1.0 / torch.stack([L[:, 0, 0], L[:, 1, 1]], dim=-1)
    principal = torch.stack([L[:, 2, 0], L[:, 2, 1]], dim=-1) + 1.0
    centre = (rays[..., 3:] * weight[..., None]).sum(1) / weight.sum(-1, keepdim=True)
    T_world_cam = torch.cat([torch.stack(rotations), centre[..., None]], dim=-1)
    H, W = image_hw
    zero, one = torch.zeros_like(focal[:, 0]), torch.ones_like(focal[:, 0])
    K = torch.stack([focal[:, 0] / 2 * W, zero, principal[:, 0] * W * 0.5,
                     zero, focal[:, 1] / 2 * H, principal[:, 1] * H * 0.5,
                     zero, zero, one], dim=-1).reshape(B, S, 3, 3)
    return invert_rigid(T_world_cam).reshape(B, S, 3, 4), K
