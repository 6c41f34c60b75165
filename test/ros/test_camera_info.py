"""CameraInfo <-> Pinhole, on nuScenes' calibrated CAM_FRONT K, and every rejected case."""

import json

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from da3_ros.ros.camera_info import Pinhole, camera_info_to_pinhole, pinhole_to_camera_info
from da3_ros.ros.errors import CameraInfoError
from shared_data import DATA

CALIBRATION = DATA / 'nuscenes_mini_6cam_sample' / 'calibration.json'


@pytest.fixture(scope='module')
def K_front() -> np.ndarray:
    cams = json.loads(CALIBRATION.read_text())['cameras']
    return np.array(cams['CAM_FRONT']['cam2img'], dtype=np.float64)


def test_round_trip_at_published_resolution(K_front):
    header = Header(frame_id='cam_front_optical')
    header.stamp.sec = 42
    D = np.array([0.1, -0.05, 0.001, 0.0, 0.002])
    msg = pinhole_to_camera_info(Pinhole(K_front, 900, 1600), header, D)
    assert (msg.height, msg.width, msg.distortion_model) == (900, 1600, 'plumb_bob')
    assert msg.header == header and msg.header is not header
    np.testing.assert_array_equal(np.reshape(msg.k, (3, 3)), K_front)
    np.testing.assert_array_equal(np.reshape(msg.r, (3, 3)), np.eye(3))
    P_expected = np.hstack([K_front, np.zeros((3, 1))])
    np.testing.assert_array_equal(np.reshape(msg.p, (3, 4)), P_expected)
    np.testing.assert_array_equal(msg.d, D)
    back = camera_info_to_pinhole(msg)
    assert (back.height, back.width) == (900, 1600)
    np.testing.assert_array_equal(back.K, K_front)
    assert K_front[0, 0] == pytest.approx(1266.417, abs=1e-3)  # the README's value


def test_pinhole_owns_a_read_only_copy(K_front):
    K = K_front.copy()
    pinhole = Pinhole(K, 900, 1600)
    K[0, 0] = -1.0
    assert pinhole.K[0, 0] > 0
    with pytest.raises(ValueError):
        pinhole.K[0, 0] = 1.0


def info(k=(500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0), height=480, width=640,
         **extra) -> CameraInfo:
    msg = CameraInfo(height=height, width=width, k=list(k))
    for key, value in extra.items():
        setattr(msg, key, value)
    return msg


def with_k(index: int, value: float) -> CameraInfo:
    k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    k[index] = value
    return info(k)


def with_roi(width: int, height: int) -> CameraInfo:
    msg = info()
    msg.roi.width, msg.roi.height = width, height
    return msg


BAD = [
    (lambda: with_k(0, float('nan')), 'nan_intrinsics'),
    (lambda: with_k(2, float('inf')), 'nan_intrinsics'),
    (lambda: with_k(4, float('-inf')), 'nan_intrinsics'),
    (lambda: with_k(0, 0.0), 'bad_focal'),
    (lambda: with_k(4, -500.0), 'bad_focal'),
    (lambda: info(k=[0.0] * 9), 'uncalibrated'),
    (lambda: with_k(8, 2.0), 'bad_k_matrix'),
    (lambda: with_k(3, 1.0), 'bad_k_matrix'),
    (lambda: info(height=0), 'bad_size'),
    (lambda: info(width=0), 'bad_size'),
    (lambda: info(binning_x=2), 'unsupported_roi'),
    (lambda: with_roi(320, 240), 'unsupported_roi'),
]


@pytest.mark.parametrize(('make', 'cause'), BAD)
def test_bad_camera_info_gives_cause(make, cause):
    with pytest.raises(CameraInfoError) as err:
        camera_info_to_pinhole(make())
    assert err.value.cause == cause


def test_uncalibrated_camera_info_is_normal_when_no_k_is_needed():
    """usb_cam without a calibration file publishes K all zeros: fine for relative depth."""
    assert camera_info_to_pinhole(info(k=[0.0] * 9), require_k=False) is None
    with pytest.raises(CameraInfoError, match='intrinsics are needed') as err:
        camera_info_to_pinhole(info(k=[0.0] * 9), require_k=True)
    assert err.value.cause == 'uncalibrated'
    assert camera_info_to_pinhole(info(), require_k=False).width == 640  # a real K: checked
    with pytest.raises(CameraInfoError):
        camera_info_to_pinhole(with_k(0, float('nan')), require_k=False)


def test_full_frame_roi_is_accepted():
    assert camera_info_to_pinhole(with_roi(640, 480)).width == 640


def test_image_size_must_match_info():
    pinhole = camera_info_to_pinhole(info())
    pinhole.check_image_size(480, 640)
    with pytest.raises(CameraInfoError) as err:
        pinhole.check_image_size(240, 320, camera='cam_left')
    assert err.value.cause == 'info_size_mismatch' and err.value.source == 'cam_left'
    assert 'cam_left CameraInfo is 480x640' in str(err.value) and '240x320' in str(err.value)


@pytest.mark.parametrize(('model', 'D', 'distorted', 'k_is_pinhole_part'), [
    ('plumb_bob', [0.0] * 5, False, True),                    # the usual pinhole
    ('', [], False, True),                                    # nothing given
    ('rational_polynomial', [0.0] * 8, False, True),
    ('plumb_bob', [-0.1, 0.01, 0.0, 0.0, 0.0], True, True),  # K still the pinhole part
    ('rational_polynomial', [0.1] + [0.0] * 7, True, True),
    ('equidistant', [0.0] * 4, True, False),                 # r = f theta: never a pinhole
    ('equidistant', [0.01, 0.0, 0.0, 0.0], True, False),
    ('double_sphere', [0.5, 0.6], True, False),              # unknown model with D
])
def test_distortion_is_kept_and_classified(model, D, distorted, k_is_pinhole_part):
    pinhole = camera_info_to_pinhole(info(distortion_model=model, d=D))
    assert (pinhole.distortion_model, pinhole.D) == (model, tuple(D))
    assert pinhole.is_distorted == distorted
    assert pinhole.k_is_pinhole_part == k_is_pinhole_part
    assert repr(model) in pinhole.describe_distortion()


def test_nan_distortion_is_rejected():
    with pytest.raises(CameraInfoError) as err:
        camera_info_to_pinhole(info(distortion_model='plumb_bob', d=[float('nan')] + [0.0] * 4))
    assert err.value.cause == 'nan_intrinsics'
