"""Camera encoder (poses -> tokens) and decoder (tokens -> poses), and the 9-d pose encoding.

Pose encoding: [t (3), quat_xyzw (4), fov_h, fov_w] of the camera-to-world
pose; OpenCV camera axes; fov in radians from the network-input image size.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from da3_ros.model.layers import Block, Mlp

_ENC_HEADS = 16
_ENC_DEPTH = 4
_ENC_LS_INIT = 0.01


def invert_rigid(T: Tensor) -> Tensor:
    """Inverse of rigid transforms (..., 3 or 4, 4) as [R^T | -R^T t] (bottom row kept)."""
    R, t = T[..., :3, :3], T[..., :3, 3:]
    R_inv = R.transpose(-1, -2)      # not .mT: the TorchScript ONNX exporter lacks aten::mT
    top = torch.cat([R_inv, -R_inv @ t], dim=-1)
    return torch.cat([top, T[..., 3:, :]], dim=-2)


def quat_xyzw_to_matrix(q: Tensor) -> Tensor:
    """(..., 4) x,y,z,w quaternions (any norm) -> (..., 3, 3) rotation matrices."""
    x, y, z, w = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    return torch.stack([
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)], -1).reshape(
            q.shape[:-1] + (3, 3))


def matrix_to_quat_xyzw(R: Tensor) -> Tensor:
    """(..., 3, 3) rotations -> (..., 4) x,y,z,w unit quaternions with w >= 0.

    Picks the best-conditioned of the four candidate formulas (pytorch3d's method), written
    with a gather instead of boolean indexing so that it exports.
    """
    m = R.reshape(R.shape[:-2] + (9,)).unbind(-1)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m
    q_abs = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                         1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    q_abs = torch.where(q_abs > 0, q_abs.clamp_min(0).sqrt(), torch.zeros_like(q_abs))
    candidates = torch.stack([
        torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1),
        torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], -1),
        torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], -1),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], -1)], -2)
    candidates = candidates / (2.0 * q_abs[..., None].clamp_min(0.1))
    best = q_abs.argmax(-1)[..., None, None].expand(*q_abs.shape[:-1], 1, 4)
    wxyz = candidates.gather(-2, best).squeeze(-2)
    xyzw = wxyz[..., [1, 2, 3, 0]]
    return torch.where(xyzw[..., 3:] < 0, -xyzw, xyzw)


def cameras_to_pose_encoding(T_cam_world: Tensor, K: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """T_cam_world (B, S, 4, 4) w2c, K (B, S, 3, 3) network-input pixels -> (B, S, 9) float32."""
    T_world_cam = invert_rigid(T_cam_world)
    H, W = image_hw
    fov_h = 2 * torch.atan((H / 2) / K[..., 1, 1])
    fov_w = 2 * torch.atan((W / 2) / K[..., 0, 0])
    return torch.cat([T_world_cam[..., :3, 3], matrix_to_quat_xyzw(T_world_cam[..., :3, :3]),
                      fov_h[..., None], fov_w[..., None]], dim=-1).float()


def pose_encoding_to_cameras(pose_enc: Tensor, image_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """(B, S, 9) -> (T_cam_world (B, S, 3, 4) w2c, K (B, S, 3, 3) with the centre as principal
    point), both in network-input pixels."""
    H, W = image_hw
    T_world_cam = torch.cat([quat_xyzw_to_matrix(pose_enc[..., 3:7]), pose_enc[..., :3, None]],
                            dim=-1)
    fy = (H / 2.0) / torch.clamp(torch.tan(pose_enc[..., 7] / 2.0), 1e-6)
    fx = (W / 2.0) / torch.clamp(torch.tan(pose_enc[..., 8] / 2.0), 1e-6)
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    K = torch.stack([fx, zero, zero + W / 2, zero, fy, zero + H / 2, zero, zero, one],
                    dim=-1).reshape(fx.shape + (3, 3))
    return invert_rigid(T_world_cam), K


class CameraEncoder(nn.Module):
    """Pose encoding (B, S, 9) -> camera tokens (B, S, C); attention runs across the S views."""

    def __init__(self, dim: int):
        super().__init__()
        self.pose_branch = Mlp(9, dim // 2, dim)
        self.token_norm = nn.LayerNorm(dim)
        self.trunk = nn.Sequential(*[Block(dim, _ENC_HEADS, norm_eps=1e-5, ls_init=_ENC_LS_INIT)
                                     for _ in range(_ENC_DEPTH)])
        self.trunk_norm = nn.LayerNorm(dim)

    def forward(self, pose_enc: Tensor) -> Tensor:
        return self.trunk_norm(self.trunk(self.token_norm(self.pose_branch(pose_enc))))


class CameraDecoder(nn.Module):
    """Raw camera token of the last output layer (B, S, 2C) -> pose encoding (B, S, 9)."""

    def __init__(self, dim: int):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim),
                                      nn.ReLU())
        self.fc_t = nn.Linear(dim, 3)
        self.fc_qvec = nn.Linear(dim, 4)
        self.fc_fov = nn.Sequential(nn.Linear(dim, 2), nn.ReLU())

    def forward(self, token: Tensor) -> Tensor:
        feat = self.backbone(token).float()
        return torch.cat([self.fc_t(feat), self.fc_qvec(feat), self.fc_fov(feat)], dim=-1)


