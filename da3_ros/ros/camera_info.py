"""sensor_msgs/CameraInfo <-> a validated pinhole model (K, image size, and the distortion
model and D as given).

Distortion is never applied: DA3 runs on the image as it is (not undistorted). D all zeros
(or empty) is a pinhole camera; any non-zero D, and `equidistant` (a fisheye model even with D
all zeros), is distorted (Pinhole.is_distorted).
K of a polynomial model (POLYNOMIAL_MODELS) is still the camera's pinhole part at the image
centre (Pinhole.k_is_pinhole_part); of another model it is not a pinhole K at all. What the
depth node does with each is in docs/nodes.md. Binning and ROI are not supported (rejected).
"""

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from da3_ros.ros.errors import CameraInfoError
from da3_ros.ros.image_conversion import copy_header

CAUSES = ('bad_size', 'uncalibrated', 'nan_intrinsics', 'bad_focal', 'bad_k_matrix',
          'unsupported_roi', 'info_size_mismatch', 'unsupported_distortion')
# radial-tangential models: D all zeros is a pinhole, small D a pinhole K plus a correction
POLYNOMIAL_MODELS = ('plumb_bob', 'rational_polynomial', '')
# fisheye projections: not a pinhole even with D all zeros (r = f * theta)
FISHEYE_MODELS = ('equidistant', 'fisheye', 'kannala_brandt')


@dataclass(frozen=True)
class Pinhole:
    """A checked pinhole camera.

    K: (3, 3) float64, pixels; u = fx X / Z + cx with u the column index (pixel centres)
    height, width: image size in pixels that K applies to
    distortion_model, D: as in the CameraInfo ('' and () when none was given); carried, never
        applied. D is unchanged by image scaling and cropping (it acts on K-normalised
        coordinates), so it holds for K scaled to another resolution of the same image.
    """

    K: np.ndarray
    height: int
    width: int
    distortion_model: str = ''
    D: tuple[float, ...] = ()

    def __post_init__(self):
        K = np.array(self.K, dtype=np.float64)  # own read-only copy: the caller's K stays theirs
        check_k(K, self.height, self.width)
        K.setflags(write=False)
        object.__setattr__(self, 'K', K)
        D = tuple(float(d) for d in self.D)
        if not np.isfinite(D).all():
            raise CameraInfoError('nan_intrinsics', f'D has NaN/inf: {list(D)}')
        object.__setattr__(self, 'D', D)

    @property
    def is_distorted(self) -> bool:
        """False for a pinhole camera: D all zeros (or empty) and not a fisheye model."""
        return any(self.D) or self.distortion_model in FISHEYE_MODELS

    @property
    def k_is_pinhole_part(self) -> bool:
        """K is the pinhole part of the camera model (a polynomial model, or no distortion),
        so a pinhole approximation through K holds near the image centre."""
        return self.distortion_model in POLYNOMIAL_MODELS or not self.is_distorted

    def describe_distortion(self) -> str:
        """e.g. "distortion_model 'equidistant', D [0.1, 0, 0, 0]"."""
        return f'distortion_model {self.distortion_model!r}, D {list(self.D)}'

    def check_image_size(self, height: int, width: int, camera: str = '') -> None:
        """Raise CameraInfoError('info_size_mismatch', source=camera) unless an image is
        height x width; the message names the camera."""
        if (height, width) != (self.height, self.width):
            raise CameraInfoError(
                'info_size_mismatch',
                f'{camera + " " if camera else ""}CameraInfo is {self.height}x{self.width} '
                f'(h x w) but its image is {height}x{width}: K cannot be used',
                source=camera or None,
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
    """CameraInfo -> Pinhole(K (3, 3) float64 px, height, width, distortion_model, D),
    validated (D finite; the distortion is kept as given, not applied or judged here).

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
    return Pinhole(K=K, height=int(msg.height), width=int(msg.width),
                   distortion_model=str(msg.distortion_model), D=tuple(msg.d))


def pinhole_to_camera_info(
    pinhole: Pinhole,
    header: Header,
    distortion: np.ndarray | None = None,
    distortion_model: str = 'plumb_bob',
) -> CameraInfo:
    """Pinhole -> CameraInfo at pinhole's resolution: K, R = I, P = [K | 0], D (zeros if None).

    header: copied; frame_id must be the camera's optical frame
    distortion: D of distortion_model (e.g. plumb_bob k1 k2 t1 t2 k3); None = 5 zeros
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
