"""Points <-> binary little-endian PLY (x y z float32, red green blue uchar, confidence float32).

The layout MeshLab, CloudCompare and Open3D read; colour and confidence only when present.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from da3_ros.errors import InputError
from da3_ros.ros.pointcloud import Points

_TYPES = {'float': '<f4', 'float32': '<f4', 'uchar': 'u1', 'uint8': 'u1'}


def _dtype(points: Points) -> np.dtype:
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    if points.rgb is not None:
        fields += [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
    if points.confidence is not None:
        fields += [('confidence', '<f4')]
    return np.dtype(fields)


def write_ply(path: str | Path, points: Points) -> None:
    """Write points (xyz in metres or model units, frame as the caller's) to `path`."""
    dtype = _dtype(points)
    rows = np.zeros(len(points.xyz), dtype=dtype)
    for axis, name in enumerate('xyz'):
        rows[name] = points.xyz[:, axis]
    if points.rgb is not None:
        for channel, name in enumerate(('red', 'green', 'blue')):
            rows[name] = points.rgb[:, channel]
    if points.confidence is not None:
        rows['confidence'] = points.confidence
    plytype = {'<f4': 'float', '|u1': 'uchar'}
    header = ['ply', 'format binary_little_endian 1.0', f'element vertex {len(rows)}']
    header += [f'property {plytype[dtype[n].str]} {n}' for n in dtype.names]
    with open(path, 'wb') as f:
        f.write(('\n'.join(header + ['end_header']) + '\n').encode('ascii'))
        f.write(rows.tobytes())


def read_ply(path: str | Path) -> Points:
    """Read a PLY written by write_ply (binary little-endian, float / uchar properties)."""
    data = Path(path).read_bytes()
    end = data.find(b'end_header\n')
    if not data.startswith(b'ply\n') or end < 0:
        raise InputError(f'{path} is not a PLY file')
    lines = data[:end].decode('ascii').splitlines()
    if 'format binary_little_endian 1.0' not in lines:
        raise InputError(f'{path}: only binary_little_endian PLY is read')
    count = next(int(line.split()[2]) for line in lines if line.startswith('element vertex'))
    props = [line.split()[1:] for line in lines if line.startswith('property')]
    dtype = np.dtype([(name, _TYPES[kind]) for kind, name in props])
    rows = np.frombuffer(data, dtype=dtype, count=count, offset=end + len(b'end_header\n'))
    xyz = np.stack([rows[n] for n in 'xyz'], axis=1).astype(np.float32)
    rgb = (np.stack([rows[n] for n in ('red', 'green', 'blue')], axis=1)
           if 'red' in dtype.names else None)
    conf = rows['confidence'].astype(np.float32) if 'confidence' in dtype.names else None
    return Points(xyz, rgb, conf)
