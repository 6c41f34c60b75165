"""sensor_msgs Image/CompressedImage <-> numpy, with the checks cv_bridge would do.

Colour images come out as (H, W, 3) uint8 RGB whatever the input encoding (rgb8, bgr8, rgba8
and bgra8 with alpha dropped, mono8 and mono16 as grey, mono16 scaled by 1/256 as cv_bridge
does); depth and confidence go out as 32FC1 little-endian; colourised depth goes out as rgb8
for people to look at. Every malformed input raises ImageError with a `cause` (see CAUSES),
never a numpy error.
"""

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from da3_ros.ros.errors import ImageError

# encoding -> channels in the message
COLOUR_ENCODINGS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'mono16': 1}
CAUSES = (
    'unsupported_encoding', 'empty_image', 'bad_step', 'truncated', 'size_mismatch',
    'unsupported_format', 'corrupt_compressed', 'bad_shape', 'bad_dtype',
)
_JPEG_MAGIC, _PNG_MAGIC = b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n'


def copy_header(header: Header) -> Header:
    """A new Header with the same stamp and frame_id, so outputs never share a mutable object."""
    stamp = Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec)
    return Header(stamp=stamp, frame_id=header.frame_id)


def _pixel_bytes(msg: Image, channels: int, itemsize: int) -> np.ndarray:
    """Validated view of msg.data as (H, W * channels * itemsize) uint8, row padding removed."""
    height, width, step = msg.height, msg.width, msg.step
    if height == 0 or width == 0:
        raise ImageError('empty_image', f'{msg.encoding} image is {height}x{width}')
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageError('bad_step', f'step {step} < width {width} x {channels * itemsize} B')
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size < step * height:
        raise ImageError('truncated', f'{data.size} B < step {step} x height {height}')
    if data.size > step * height:
        raise ImageError('size_mismatch', f'{data.size} B > step {step} x height {height}')
    return data.reshape(height, step)[:, :row_bytes]


# encoding -> cv2 conversion to RGB (rgb8 needs none)
_TO_RGB = {'bgr8': cv2.COLOR_BGR2RGB, 'rgba8': cv2.COLOR_RGBA2RGB, 'bgra8': cv2.COLOR_BGRA2RGB,
           'mono8': cv2.COLOR_GRAY2RGB}


def image_to_rgb(msg: Image) -> np.ndarray:
    """Colour or mono Image -> (H, W, 3) uint8 RGB.

    msg: encoding one of COLOUR_ENCODINGS; step may include row padding; mono16 in either
        byte order (is_bigendian), scaled to 8 bits by 1/256 and rounded (cv_bridge's scale)
    rgb8 without row padding comes back as a read-only view of msg.data (no copy: 6 cameras of
    1600 x 900 at 30 Hz are 780 MB/s of copies on the node's executor thread otherwise; the
    view keeps the message's buffer alive); every other input as a new array (cv2's colour
    conversion, or a copy without the padding).
    """
    if msg.encoding not in COLOUR_ENCODINGS:
        raise ImageError(
            'unsupported_encoding', f'image encoding {msg.encoding!r} is not supported; '
            f'publish one of {", ".join(sorted(COLOUR_ENCODINGS))} (or a jpeg/png '
            f'CompressedImage with image_transport compressed)'
        )
    channels = COLOUR_ENCODINGS[msg.encoding]
    if msg.encoding == 'mono16':
        rows = _pixel_bytes(msg, 1, 2)
        grey = np.ascontiguousarray(rows).view('>u2' if msg.is_bigendian else '<u2')
        grey8 = np.minimum((grey.astype(np.uint32) + 128) >> 8, 255).astype(np.uint8)
        return cv2.cvtColor(grey8, cv2.COLOR_GRAY2RGB)
    rows = _pixel_bytes(msg, channels, 1)
    pixels = rows.reshape(msg.height, msg.width, channels)
    if msg.encoding == 'rgb8':
        if pixels.flags.c_contiguous:              # no padding: the message's bytes, read-only
            view = pixels.view()
            view.flags.writeable = False
            return view
        return np.ascontiguousarray(pixels)
    if channels == 1:
        pixels = pixels[..., 0]
    return cv2.cvtColor(pixels, _TO_RGB[msg.encoding])


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """JPEG/PNG CompressedImage -> (H, W, 3) uint8 RGB.

    msg.format: 'jpeg', 'png', or image_transport's 'bgr8; jpeg compressed bgr8' style. Colour
    payloads are BGR as compressed_image_transport writes them; mono decodes to grey RGB.
    """
    fmt = msg.format.lower()
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if 'compresseddepth' in fmt or not any(c in fmt for c in ('jpeg', 'jpg', 'png')):
        raise ImageError('unsupported_format', f'format {msg.format!r}; expected jpeg or png')
    if data.size == 0:
        raise ImageError('empty_image', f'{msg.format} payload has 0 bytes')
    head, tail = data[:8].tobytes(), data[-16:].tobytes()
    # libjpeg decodes a cut-off JPEG into a grey-padded image with only a warning, so check the
    # end markers ourselves: JPEG ends in EOI (FF D9), PNG in an IEND chunk.
    if head.startswith(_JPEG_MAGIC):
        complete = b'\xff\xd9' in tail
    elif head.startswith(_PNG_MAGIC):
        complete = b'IEND' in tail
    else:
        raise ImageError('corrupt_compressed', f'no JPEG/PNG signature: {head.hex()}')
    if not complete:
        raise ImageError('truncated', f'{msg.format} payload of {data.size} B has no end marker')
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageError('corrupt_compressed', f'cv2 cannot decode {data.size} B of {msg.format}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_image(rgb: np.ndarray, header: Header) -> Image:
    """(H, W, 3) uint8 RGB -> rgb8 Image with a copy of `header`."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ImageError('bad_shape', f'expected (H, W, 3), got {rgb.shape}')
    if rgb.dtype != np.uint8:
        raise ImageError('bad_dtype', f'expected uint8, got {rgb.dtype}')
    height, width, _ = rgb.shape
    msg = Image(height=height, width=width, encoding='rgb8', is_bigendian=0, step=width * 3)
    msg.header = copy_header(header)
    msg.data = np.ascontiguousarray(rgb).tobytes()  # bytes: ~100x faster than an ndarray
    return msg


def float_to_image(values: np.ndarray, header: Header) -> Image:
    """(H, W) float depth (metres, NaN = invalid) or confidence -> 32FC1 little-endian Image."""
    if values.ndim != 2 or 0 in values.shape:
        raise ImageError('bad_shape', f'expected (H, W), got {values.shape}')
    if not np.issubdtype(values.dtype, np.floating):
        raise ImageError('bad_dtype', f'expected floating point, got {values.dtype}')
    height, width = values.shape
    msg = Image(height=height, width=width, encoding='32FC1', is_bigendian=0, step=width * 4)
    msg.header = copy_header(header)
    msg.data = np.ascontiguousarray(values, dtype='<f4').tobytes()
    return msg


def image_to_float(msg: Image) -> np.ndarray:
    """32FC1 Image (either byte order) -> (H, W) float32 in native order, a new array."""
    if msg.encoding != '32FC1':
        raise ImageError('unsupported_encoding', f'{msg.encoding!r}; expected 32FC1')
    rows = _pixel_bytes(msg, 1, 4)
    dtype = '>f4' if msg.is_bigendian else '<f4'
    return np.ascontiguousarray(rows).view(dtype).astype(np.float32)


def colorize_depth(
    depth: np.ndarray,
    header: Header,
    min_m: float | None = None,
    max_m: float | None = None,
    colormap: int = cv2.COLORMAP_TURBO,
) -> Image:
    """(H, W) depth in metres -> rgb8 Image for humans: near is red, far is blue, NaN is black.

    min_m, max_m: colour range in metres; None takes the finite depths' min / max
    colormap: an OpenCV COLORMAP_* constant
    """
    if depth.ndim != 2 or 0 in depth.shape:
        raise ImageError('bad_shape', f'expected (H, W), got {depth.shape}')
    finite = np.isfinite(depth)
    known = depth[finite]
    lo = float(min_m) if min_m is not None else float(known.min()) if known.size else 0.0
    hi = float(max_m) if max_m is not None else float(known.max()) if known.size else 1.0
    scaled = (hi - np.where(finite, depth, hi)) / max(hi - lo, 1e-9)  # 1 = near, 0 = far
    index = np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(index, colormap), cv2.COLOR_BGR2RGB)
    rgb[~finite] = 0
    return rgb_to_image(rgb, header)
