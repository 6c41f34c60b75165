"""Image/CompressedImage <-> numpy against cv2's own conversions, on a real nuScenes JPEG."""


import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from da3_ros.errors import InputError
from da3_ros.ros.errors import ImageError
from da3_ros.ros.image_conversion import (
    colorize_depth,
    compressed_to_rgb,
    float_to_image,
    image_to_float,
    image_to_rgb,
    rgb_to_image,
)
from shared_data import DATA

SAMPLES = DATA / 'nuscenes_mini_6cam_sample' / 'samples'
JPEG_PATH = next(SAMPLES.glob('*__CAM_FRONT__*.jpg'))


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    """CAM_FRONT as RGB, downscaled to 120x213 (odd width: no accidental alignment)."""
    bgr = cv2.imread(str(JPEG_PATH), cv2.IMREAD_COLOR)
    return cv2.cvtColor(cv2.resize(bgr, (213, 120), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)


def header() -> Header:
    h = Header(frame_id='cam_front_optical')
    h.stamp.sec, h.stamp.nanosec = 1_532_402_927, 612_460_000
    return h


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    """Image with `pad` extra bytes at the end of each row (step > width * channels)."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, step=padded.shape[1])
    msg.data = padded.tobytes()
    return msg


CV2_FROM_RGB = {'rgb8': None, 'bgr8': cv2.COLOR_RGB2BGR, 'rgba8': cv2.COLOR_RGB2RGBA,
                'bgra8': cv2.COLOR_RGB2BGRA}


@pytest.mark.parametrize('pad', [0, 5])
@pytest.mark.parametrize('encoding', sorted(CV2_FROM_RGB))
def test_colour_encodings_match_cv2(rgb, encoding, pad):
    code = CV2_FROM_RGB[encoding]
    pixels = rgb if code is None else cv2.cvtColor(rgb, code)
    out = image_to_rgb(raw_image(pixels, encoding, pad))
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    np.testing.assert_array_equal(out, rgb)


def test_mono8_becomes_grey_rgb(rgb):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = image_to_rgb(raw_image(grey, 'mono8', pad=3))
    np.testing.assert_array_equal(out, cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))


def test_rgb8_is_a_read_only_view_other_encodings_new_arrays(rgb):
    """rgb8 without padding is not copied, and cannot be written through; anything else is
    a new array that does not alias the message."""
    msg = raw_image(rgb, 'rgb8')
    out = image_to_rgb(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    with pytest.raises(ValueError, match='read-only'):
        out[:] = 0
    for pixels, encoding, pad in ((rgb, 'rgb8', 3), (cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                                    'bgr8', 0)):
        msg = raw_image(pixels, encoding, pad)
        out = image_to_rgb(msg)
        assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
        out[:] = 0
        np.testing.assert_array_equal(image_to_rgb(msg), rgb)


@pytest.mark.parametrize('fmt', ['jpeg', 'bgr8; jpeg compressed bgr8', 'JPG'])
def test_real_jpeg_matches_cv2_imread(fmt):
    msg = CompressedImage(format=fmt)
    msg.data = JPEG_PATH.read_bytes()
    expected = cv2.cvtColor(cv2.imread(str(JPEG_PATH), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    out = compressed_to_rgb(msg)
    assert out.shape == (900, 1600, 3)
    np.testing.assert_array_equal(out, expected)


def test_png_is_lossless(rgb):
    ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format='bgr8; png compressed bgr8')
    msg.data = png.tobytes()
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)


def test_rgb_round_trip_and_header_copy(rgb):
    h = header()
    msg = rgb_to_image(rgb, h)
    assert (msg.encoding, msg.step, msg.height, msg.width) == ('rgb8', 213 * 3, 120, 213)
    assert msg.header == h and msg.header is not h
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_float_round_trip_keeps_nan_and_little_endian():
    depth = np.linspace(0.5, 80.0, 6 * 7, dtype=np.float32).reshape(6, 7)
    depth[2, 3] = np.nan
    msg = float_to_image(depth, header())
    assert (msg.encoding, msg.is_bigendian, msg.step) == ('32FC1', 0, 28)
    assert bytes(msg.data) == depth.astype('<f4').tobytes()
    np.testing.assert_array_equal(image_to_float(msg), depth)


def test_big_endian_32fc1_is_read():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    msg = Image(height=3, width=4, encoding='32FC1', is_bigendian=1, step=16)
    msg.data = depth.astype('>f4').tobytes()
    np.testing.assert_array_equal(image_to_float(msg), depth)


def test_colorize_depth_near_red_far_blue_nan_black():
    depth = np.array([[1.0, 3.0, np.nan], [2.0, 1.0, 3.0]], dtype=np.float32)
    msg = colorize_depth(depth, header())
    assert (msg.encoding, msg.height, msg.width) == ('rgb8', 2, 3)
    out = image_to_rgb(msg)

    def turbo(index: int) -> np.ndarray:
        bgr = cv2.applyColorMap(np.array([[index]], np.uint8), cv2.COLORMAP_TURBO)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[0, 0]

    np.testing.assert_array_equal(out[0, 0], turbo(255))  # nearest
    np.testing.assert_array_equal(out[0, 1], turbo(0))  # farthest
    np.testing.assert_array_equal(out[1, 0], turbo(128))  # middle: round(0.5 * 255)
    np.testing.assert_array_equal(out[0, 2], [0, 0, 0])
    fixed = image_to_rgb(colorize_depth(depth, header(), min_m=0.0, max_m=2.0))
    np.testing.assert_array_equal(fixed[0, 1], turbo(0))  # beyond max_m: clipped to far


def image_msg(encoding='rgb8', height=4, width=5, step=None, size=None) -> Image:
    step = width * 3 if step is None else step
    msg = Image(height=height, width=width, encoding=encoding, step=step)
    msg.data = bytes(step * height if size is None else size)
    return msg


def compressed_msg(fmt: str, data: bytes) -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = data
    return msg


def truncated_jpeg() -> bytes:
    data = JPEG_PATH.read_bytes()[:70_001]
    assert b'\xff\xd9' not in data[-16:]
    return data


def truncated_png() -> bytes:
    ok, png = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))
    return png.tobytes()[:-20]


def garbage_with_jpeg_markers() -> bytes:
    noise = np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    return JPEG_PATH.read_bytes()[:20] + noise + b'\xff\xd9'


BAD_RAW = [
    (lambda: image_msg(encoding='yuv422'), 'unsupported_encoding'),
    (lambda: image_msg(encoding='16UC1'), 'unsupported_encoding'),
    (lambda: image_msg(height=0), 'empty_image'),
    (lambda: image_msg(width=0, step=0), 'empty_image'),
    (lambda: image_msg(step=14), 'bad_step'),
    (lambda: image_msg(size=4 * 15 - 1), 'truncated'),
    (lambda: image_msg(size=0), 'truncated'),
    (lambda: image_msg(size=4 * 15 + 3), 'size_mismatch'),
]
BAD_COMPRESSED = [
    (lambda: compressed_msg('jpeg', b''), 'empty_image'),
    (lambda: compressed_msg('tiff', JPEG_PATH.read_bytes()), 'unsupported_format'),
    (lambda: compressed_msg('16UC1; compressedDepth png', truncated_png()),
     'unsupported_format'),
    (lambda: compressed_msg('jpeg', b'not an image at all'), 'corrupt_compressed'),
    (lambda: compressed_msg('jpeg', garbage_with_jpeg_markers()), 'corrupt_compressed'),
    (lambda: compressed_msg('jpeg', truncated_jpeg()), 'truncated'),
    (lambda: compressed_msg('png', truncated_png()), 'truncated'),
]


@pytest.mark.parametrize('bigendian', [0, 1])
def test_mono16_becomes_grey_rgb_scaled_by_1_256(bigendian):
    grey = np.array([[0, 127, 128, 383], [384, 65407, 65408, 65535]], np.uint16)
    msg = Image(height=2, width=4, encoding='mono16', is_bigendian=bigendian, step=8 + 3)
    rows = grey.astype('>u2' if bigendian else '<u2').view(np.uint8)
    msg.data = np.concatenate([rows, np.zeros((2, 3), np.uint8)], axis=1).tobytes()
    out = image_to_rgb(msg)
    expected = np.array([[0, 0, 1, 1], [2, 255, 255, 255]], np.uint8)  # round(x / 256)
    np.testing.assert_array_equal(out, np.repeat(expected[..., None], 3, axis=2))


def test_unsupported_encoding_names_it_and_says_what_works():
    with pytest.raises(ImageError, match="encoding 'yuv422' is not supported; publish one "
                       'of bgr8, bgra8, mono16, mono8, rgb8, rgba8'):
        image_to_rgb(image_msg(encoding='yuv422'))


@pytest.mark.parametrize(('make', 'cause'), BAD_RAW)
def test_bad_raw_image_gives_cause(make, cause):
    with pytest.raises(ImageError) as info:
        image_to_rgb(make())
    assert info.value.cause == cause
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize(('make', 'cause'), BAD_COMPRESSED)
def test_bad_compressed_image_gives_cause(make, cause):
    with pytest.raises(ImageError) as info:
        compressed_to_rgb(make())
    assert info.value.cause == cause


def test_bad_float_and_rgb_inputs_give_cause():
    cases = [
        (lambda: float_to_image(np.zeros((2, 3, 1), np.float32), header()), 'bad_shape'),
        (lambda: float_to_image(np.zeros((0, 3), np.float32), header()), 'bad_shape'),
        (lambda: float_to_image(np.zeros((2, 3), np.int32), header()), 'bad_dtype'),
        (lambda: rgb_to_image(np.zeros((2, 3, 3), np.float32), header()), 'bad_dtype'),
        (lambda: rgb_to_image(np.zeros((2, 3)), header()), 'bad_shape'),
        (lambda: image_to_float(image_msg()), 'unsupported_encoding'),
        (lambda: image_to_float(image_msg('32FC1', step=20, size=79)), 'truncated'),
    ]
    for call, cause in cases:
        with pytest.raises(ImageError) as info:
            call()
        assert info.value.cause == cause
