"""Points <-> sensor_msgs/PointCloud2: the message side of the package's point clouds.

Points carry x, y, z float32 (metres), rgb packed into a float32 as PCL does (the bits of the
uint32 0x00RRGGBB, which rviz2 reads) and confidence float32. The points themselves (back-
projection, filters, fusion, voxel averaging) are `da3_ros/geometry/points.py`.

What this replaces: sensor_msgs_py.point_cloud2 (not installable here). Ours writes the
records with one numpy structured array (no per-point Python), reads any float32 x, y, z cloud
(padded, organised, big-endian) the same way, and keeps PCL's rgb bits exact in both
directions.
"""

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from da3_ros.geometry.points import Points, pack_rgb, unpack_rgb
from da3_ros.ros.errors import CloudError
from da3_ros.ros.image_conversion import copy_header

# PointField datatype -> numpy type character (sensor_msgs/PointField constants).
_FIELD_TYPES = {
    PointField.INT8: 'i1', PointField.UINT8: 'u1', PointField.INT16: 'i2',
    PointField.UINT16: 'u2', PointField.INT32: 'i4', PointField.UINT32: 'u4',
    PointField.FLOAT32: 'f4', PointField.FLOAT64: 'f8',
}
CAUSES = ('shape_mismatch', 'missing_field', 'bad_field', 'truncated')


def _cloud_message(names: list[str], count: int, data: bytes, header: Header) -> PointCloud2:
    """Unorganised, dense, little-endian PointCloud2 of `count` records of float32 fields."""
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate(names)]
    step = 4 * len(names)
    msg = PointCloud2(height=1, width=count, fields=fields, is_bigendian=False,
                      point_step=step, row_step=step * count, is_dense=True)
    msg.header = copy_header(header)
    msg.data = data
    return msg


def points_to_cloud(points: Points, header: Header) -> PointCloud2:
    """Points -> unorganised (height 1), dense, little-endian PointCloud2.

    Fields: x, y, z FLOAT32 at 0, 4, 8; then rgb FLOAT32 and confidence FLOAT32 when present.
    header: copied; frame_id must be the frame the points are in
    """
    names = ['x', 'y', 'z'] + ['rgb'] * (points.rgb is not None)
    names += ['confidence'] * (points.confidence is not None)
    # 'rgb' is filled through a uint32 field so that no float operation touches its bits
    packed = np.zeros(len(points.xyz), dtype=[(n, '<u4' if n == 'rgb' else '<f4') for n in names])
    for axis, name in enumerate('xyz'):
        packed[name] = points.xyz[:, axis]
    if points.rgb is not None:
        packed['rgb'] = pack_rgb(points.rgb).view(np.uint32)
    if points.confidence is not None:
        packed['confidence'] = points.confidence
    return _cloud_message(names, len(packed), packed.tobytes(), header)


def packed_to_cloud(records: np.ndarray, header: Header) -> PointCloud2:
    """(N, 5) or (N, 4) float32 records from geometry.packed_points (x, y, z, rgb bits[,
    confidence]) -> the same PointCloud2 points_to_cloud builds, without repacking."""
    records = np.ascontiguousarray(records, dtype='<f4')
    if records.ndim != 2 or records.shape[1] not in (4, 5):
        raise CloudError('shape_mismatch', f'records must be (N, 4|5), got {records.shape}')
    names = ['x', 'y', 'z', 'rgb', 'confidence'][:records.shape[1]]
    return _cloud_message(names, len(records), records.tobytes(), header)


def cloud_dtype(msg: PointCloud2) -> np.dtype:
    """Structured numpy dtype of one point, from msg.fields, point_step and byte order."""
    order = '>' if msg.is_bigendian else '<'
    names, formats, offsets = [], [], []
    for field in msg.fields:
        if field.datatype not in _FIELD_TYPES or field.count != 1:
            raise CloudError('bad_field', f'{field.name}: datatype {field.datatype}, '
                             f'count {field.count}')
        names.append(field.name)
        formats.append(order + _FIELD_TYPES[field.datatype])
        offsets.append(field.offset)
    try:
        return np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                         'itemsize': msg.point_step})
    except ValueError as err:  # overlapping fields or fields past point_step
        raise CloudError('bad_field', str(err)) from err


def cloud_to_points(msg: PointCloud2) -> Points:
    """PointCloud2 with float32 x, y, z (+ optional rgb, confidence) -> Points, NaN rows kept."""
    dtype = cloud_dtype(msg)
    if 'rgb' in dtype.names:  # read the packed colour as integer bits, never as a float
        if dtype['rgb'].itemsize != 4:
            raise CloudError('bad_field', f"rgb field is {dtype['rgb']}, expected 4 bytes")
        fields = {n: (dtype[n], dtype.fields[n][1]) for n in dtype.names}
        fields['rgb'] = (np.dtype(dtype['rgb'].byteorder + 'u4'), fields['rgb'][1])
        dtype = np.dtype({'names': list(fields), 'formats': [f for f, _ in fields.values()],
                          'offsets': [o for _, o in fields.values()], 'itemsize': dtype.itemsize})
    for name in 'xyz':
        if name not in dtype.names:
            raise CloudError('missing_field', f'no {name!r} in fields {dtype.names}')
    data = np.frombuffer(msg.data, dtype=np.uint8)
    row_bytes = msg.width * msg.point_step
    if msg.row_step < row_bytes or data.size < msg.row_step * msg.height:
        raise CloudError('truncated', f'{data.size} B for {msg.height} rows of '
                         f'{msg.width} x {msg.point_step} B (row_step {msg.row_step})')
    rows = data[: msg.row_step * msg.height].reshape(msg.height, msg.row_step)[:, :row_bytes]
    cloud = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    xyz = np.stack([cloud[n].astype(np.float32) for n in 'xyz'], axis=1)
    rgb = unpack_rgb(cloud['rgb'].astype(np.uint32)) if 'rgb' in dtype.names else None
    conf = cloud['confidence'].astype(np.float32) if 'confidence' in dtype.names else None
    return Points(xyz, rgb, conf)
