"""The package's one PLY codec: a vertex table <-> binary little-endian PLY, through `plyfile`.

A vertex table is a numpy structured array, one named field per PLY property (x y z float32,
then whatever the caller adds: red green blue uchar, confidence or weight float32, ...). The
file is the layout MeshLab, CloudCompare and Open3D read. Both the SLAM's map.ply
(slam/map_io.py: x y z weight) and `da3-ros process`'s clouds (offline/ply.py: x y z, colour
and confidence when present) are written and read here. Writes are atomic (da3_ros/files.py).
Pure: imports nothing of ROS.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement, PlyParseError

from da3_ros.errors import InputError
from da3_ros.files import write_atomic


def vertex_table(xyz: np.ndarray, **columns: np.ndarray | None) -> np.ndarray:
    """(M, 3) points plus named columns -> a structured vertex table (x y z float32 first).

    A column of shape (M, 3) named 'rgb' becomes red green blue uchar; any other (M,) column
    keeps its name and becomes float32. Columns that are None are left out."""
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    for name, values in columns.items():
        if values is None:
            continue
        fields += ([(c, 'u1') for c in ('red', 'green', 'blue')] if name == 'rgb'
                   else [(name, '<f4')])
    table = np.zeros(len(xyz), dtype=fields)
    for axis, name in enumerate('xyz'):
        table[name] = xyz[:, axis]
    for name, values in columns.items():
        if values is None:
            continue
        if name == 'rgb':
            for channel, c in enumerate(('red', 'green', 'blue')):
                table[c] = values[:, channel]
        else:
            table[name] = values
    return table


def ply_bytes(table: np.ndarray) -> bytes:
    """A structured vertex table -> the bytes of a binary little-endian PLY."""
    stream = io.BytesIO()
    PlyData([PlyElement.describe(table, 'vertex')], byte_order='<').write(stream)
    return stream.getvalue()


def write_ply(path: str | Path, table: np.ndarray) -> None:
    """Write a vertex table to `path`, atomically."""
    write_atomic(path, ply_bytes(table))


def read_ply(path: str | Path) -> np.ndarray:
    """Read the vertex table of a PLY file (any format plyfile reads) as a structured array."""
    try:
        data = PlyData.read(io.BytesIO(Path(path).read_bytes()))
        return data['vertex'].data.copy()
    except (PlyParseError, ValueError, KeyError, IndexError) as e:
        raise InputError(f'{path} is not a PLY file with vertices: {e}') from e


def columns(table: np.ndarray, *names: str) -> np.ndarray | None:
    """The named fields of a vertex table stacked as (M, len(names)), or None if one is
    missing."""
    if not all(name in table.dtype.names for name in names):
        return None
    return np.stack([table[name] for name in names], axis=1)
