"""sensor_msgs/CameraInfo <-> a validated pinhole model (K and image size).

Only the pinhole part is used: DA3 works on the raw image, so distortion D is carried through
to the published CameraInfo but never applied. Binning and ROI are not supported (rejected).
"""

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from da3_ros.ros.errors import CameraInfoError
from da3_ros.ros.image_conversion import copy_header

CAUSES = ('bad_size', 'uncalibrated', 'nan_intrinsics', 'bad_focal', 'bad_k_matrix',
          'unsupported_roi', 'info_size_mismatch')


@dataclass(frozen=True)
class Pinhole:
    """A checked pinhole camera.

    K: (3, 3) float64, pixels; u = fx X / Z + cx with u the column index (pixel centres)
    height, width: image size in pixels that K applies to
    """

    K: np.ndarray
    height: int
    width: int

    def __post_init__(self):
        K = np.array(self.K, dtype=np.float64)  # own read-only copy: the caller's K stays theirs
        check_k(K, self.height, self.width)
        K.setflags(write=False)
        object.__setattr__(self, 'K', K)

    def check_image_size(self, height: int, width: int) -> None:
        """Raise CameraInfoError('info_size_mismatch') unless an image is height x width."""
        if (height, width) != (self.height, self.width):
            raise CameraInfoError(
                'info_size_mismatch',
                f'CameraInfo {self.height}x{self.width} vs image {height}x{width}',
            )


def check_k(K: np.ndarray, height: int, width: int) -> None:
    """Raise CameraInfoError unless K is a finite upper-triangular pinhole with positive focals."""
    if height <= 0 or width <= 0:
        raise CameraInfoError('bad_size', f'image size {height}x{width}')
    if K.shape != (3, 3):
        raise CameraInfoError('bad_k_matrix', f'K has shape {K.shape}, expected (3, 3)')
    if not np.isfinite(K).all():
        raise CameraInfoError('nan_intrinsics', f'K has NaN/inf: {K.ravel().tolist()}')
    if not K.any():
        raise CameraInfoError('uncalibrated', 'K is all zeros (an uncalibrated camera)')
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CameraInfoError('bad_focal', f'fx={K[0, 0]}, fy={K[1, 1]} must be > 0')
    if K[1, 0] != 0 or not np.array_equal(K[2], [0.0, 0.0, 1.0]):
        raise CameraInfoError('bad_k_matrix', f'K is not [[fx s cx] [0 fy cy] [0 0 1]]: {K}')


def camera_info_to_pinhole(msg: CameraInfo, require_k: bool = True) -> Pinhole | None:
    """CameraInfo -> Pinhole(K (3, 3) float64 px, height, width), validated.

    K all zeros is what an uncalibrated camera publishes (e.g. usb_cam without a calibration
    file): None when the caller needs no K (require_k False), else CameraInfoError
    'uncalibrated'.
    """
    if not any(msg.k):
        if not require_k:
            return None
        raise CameraInfoError('uncalibrated', 'K is all zeros (an uncalibrated camera) but '
                              'intrinsics are needed: calibrate the camera')
    roi = msg.roi
    full_roi = roi.width in (0, msg.width) and roi.height in (0, msg.height)
    if msg.binning_x > 1 or msg.binning_y > 1 or not full_roi:
        raise CameraInfoError(
            'unsupported_roi',
            f'binning {msg.binning_x}x{msg.binning_y}, roi {roi.width}x{roi.height}',
        )
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    return Pinhole(K=K, height=int(msg.height), width=int(msg.width))


def pinhole_to_camera_info(
    pinhole: Pinhole,
    header: Header,
    distortion: np.ndarray | None = None,
    distortion_model: str = 'plumb_bob',
) -> CameraInfo:
    """Pinhole -> CameraInfo at pinhole's resolution: K, R = I, P = [K | 0], D (zeros if None).

    header: copied; frame_id must be the camera's optical frame
    distortion: (5,) float, plumb_bob k1 k2 t1 t2 k3, at the same resolution as K
    """
    D = np.zeros(5) if distortion is None else np.asarray(distortion, dtype=np.float64)
    P = np.hstack([pinhole.K, np.zeros((3, 1))])
    msg = CameraInfo(height=pinhole.height, width=pinhole.width, distortion_model=distortion_model)
    msg.header = copy_header(header)
    msg.k = pinhole.K.astype(np.float64).ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    msg.p = P.ravel().tolist()
    msg.d = D.ravel().tolist()
    return msg
