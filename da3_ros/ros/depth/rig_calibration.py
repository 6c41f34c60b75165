"""Rig extrinsics for pose-conditioned DA3: a calibration YAML or TF lookups -> (S, 4, 4).

DA3 takes world -> camera extrinsics (OpenCV optical axes). For a rig, "world" is the rig's
base frame, so view v gets inv(T_base_cam_v). The YAML format (one entry per camera name, i.e.
the camera namespace's last component):

    base_frame: base_link            # frame the poses are expressed in
    cameras:
      CAM_FRONT:
        T_base_camera: [[r00, r01, r02, x], [...], [...], [0, 0, 0, 1]]   # metres
        K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]    # optional, pixels of the input image
      CAM_BACK:
        translation: [x, y, z]                      # metres, instead of T_base_camera
        rotation_xyzw: [qx, qy, qz, qw]             # base <- camera optical frame

K in the YAML is only a fallback for cameras whose CameraInfo never arrives.

Why in the ROS shell though it imports nothing of ROS: only the depth node reads a
rig calibration (rig.source yaml or tf), `extrinsics_from_tf` reads the shell's TfBuffer and
raises its TfError, and the file names cameras by their ROS namespace.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from transforms3d.quaternions import quat2mat

from da3_ros.errors import ConfigError
from da3_ros.ros.errors import TfError


@dataclass(frozen=True)
class CameraCalibration:
    """T_base_camera: (4, 4) float64, metres, maps camera optical points into the base frame.
    K: (3, 3) float64 pixels of the input image, or None."""

    T_base_camera: np.ndarray
    K: np.ndarray | None = None


@dataclass(frozen=True)
class RigCalibration:
    base_frame: str
    cameras: dict[str, CameraCalibration]

    def extrinsics(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """(S, 4, 4) world(=base) -> camera for the cameras `names`, in that order."""
        if missing := [n for n in names if n not in self.cameras]:
            raise ConfigError(f'calibration has no camera {missing}; has {sorted(self.cameras)}')
        return world_to_cameras([self.cameras[n].T_base_camera for n in names])


def _rigid(T: np.ndarray, where: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise ConfigError(f'{where}: expected a finite 4x4 matrix, got shape {T.shape}')
    R = T[:3, :3]
    if (not np.allclose(R.T @ R, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0
            or not np.allclose(T[3], [0, 0, 0, 1])):
        raise ConfigError(f'{where}: not a rigid transform: {T.tolist()}')
    return T


def _camera(name: str, entry: dict, where: str) -> CameraCalibration:
    where = f'{where}: camera {name}'
    if not isinstance(entry, dict):
        raise ConfigError(f'{where}: expected a mapping, got {entry!r}')
    try:
        if 'T_base_camera' in entry:
            T = _rigid(entry['T_base_camera'], where)
        else:
            q = np.asarray(entry['rotation_xyzw'], dtype=np.float64)
            t = np.asarray(entry['translation'], dtype=np.float64)
            if q.shape != (4,) or t.shape != (3,) or np.linalg.norm(q) < 1e-9:
                raise ConfigError(f'{where}: need translation [x, y, z] and a non-zero '
                                  f'rotation_xyzw [x, y, z, w]')
            T = np.eye(4)
            T[:3, :3] = quat2mat(np.roll(q / np.linalg.norm(q), 1))  # transforms3d: w, x, y, z
            T[:3, 3] = t
            T = _rigid(T, where)
        K = None if entry.get('K') is None else np.asarray(entry['K'], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f'{where}: needs T_base_camera or translation + rotation_xyzw '
                          f'({type(err).__name__}: {err})') from err
    if K is not None and (K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0
                          or K[1, 1] <= 0):
        raise ConfigError(f'{where}: K must be a finite 3x3 with positive focals')
    return CameraCalibration(T, K)


def load_rig_calibration(path: str | Path) -> RigCalibration:
    """Read and validate a calibration YAML (format in the module docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f'{path}: cannot read calibration YAML: {err}') from err
    if not isinstance(data, dict) or not isinstance(data.get('cameras'), dict):
        raise ConfigError(f'{path}: needs a top-level mapping with `cameras:`')
    base = data.get('base_frame', '')
    if not isinstance(base, str):
        raise ConfigError(f'{path}: base_frame must be a string, got {base!r}')
    cameras = {str(n): _camera(str(n), e, str(path)) for n, e in data['cameras'].items()}
    return RigCalibration(base, cameras)


def world_to_cameras(T_base_cams: list[np.ndarray]) -> np.ndarray:
    """[(4, 4) T_base_cam] -> (S, 4, 4) float64 T_cam_base (DA3's world -> camera)."""
    return np.linalg.inv(np.stack([np.asarray(T, dtype=np.float64) for T in T_base_cams]))


def extrinsics_from_tf(buffer, base_frame: str, camera_frames: list[str],
                       stamp_ns: int | None = None,
                       tolerance_ns: int | None = None) -> np.ndarray:
    """(S, 4, 4) T_cam_base from a TfBuffer (da3_ros.ros.tf_buffer), one per camera frame.

    Raises TfError (cause 'unknown_frame', 'not_connected', 'extrapolation', ...).
    """
    if not camera_frames:
        raise TfError('unknown_frame', 'no camera frames')
    return np.stack([buffer.lookup(frame, base_frame, stamp_ns, tolerance_ns)
                     for frame in camera_frames])
