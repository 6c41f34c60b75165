"""`da3-ros process`'s clouds as PLY: Points (xyz, colour and confidence when present) <->
the package's one PLY codec, geometry/ply.py (x y z float32, red green blue uchar,
confidence float32)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from da3_ros.errors import InputError
from da3_ros.geometry import ply
from da3_ros.geometry.points import Points


def write_ply(path: str | Path, points: Points) -> None:
    """Write points (xyz in metres or model units, frame as the caller's) to `path`."""
    ply.write_ply(path, ply.vertex_table(points.xyz, rgb=points.rgb,
                                         confidence=points.confidence))


def read_ply(path: str | Path) -> Points:
    """Read a PLY's vertices as Points (InputError if it is not a PLY with x y z)."""
    table = ply.read_ply(path)
    xyz = ply.columns(table, 'x', 'y', 'z')
    if xyz is None:
        raise InputError(f'{path}: the PLY has no x y z vertex properties')
    conf = ply.columns(table, 'confidence')
    return Points(xyz.astype(np.float32), ply.columns(table, 'red', 'green', 'blue'),
                  None if conf is None else conf[:, 0].astype(np.float32))
