"""Saving and loading a SLAM result: map.ply (binary little-endian x y z weight, float32,
through the package's PLY codec geometry/ply.py), trajectory.tum, trajectory.kitti, and
metadata.json, each written atomically."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from da3_ros.errors import InputError
from da3_ros.geometry import ply
from da3_ros.slam.trajectory_io import atomic_write_bytes, read_tum, write_kitti, write_tum

FORMAT_VERSION = 1


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """map.ply -> points (M, 3) float32, weight (M,) float32."""
    table = ply.read_ply(path)
    points, weight = ply.columns(table, 'x', 'y', 'z'), ply.columns(table, 'weight')
    if points is None or weight is None:
        raise InputError(f'{path}: a map.ply needs x y z weight, has {table.dtype.names}')
    return points.astype(np.float32), weight[:, 0].astype(np.float32)


@dataclass(frozen=True)
class SavedMap:
    points: np.ndarray          # (M, 3) float32 world
    weight: np.ndarray          # (M,) float32
    stamps_s: np.ndarray        # (F,)
    T_world_cam: np.ndarray     # (F, 4, 4)
    metadata: dict


def save_result(folder: Path, points: np.ndarray, weight: np.ndarray, stamps_s: np.ndarray,
                T_world_cam: np.ndarray, metadata: dict):
    """Write the four files into `folder` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ply.write_ply(folder / 'map.ply', ply.vertex_table(points, weight=weight))
    write_tum(folder / 'trajectory.tum', stamps_s, T_world_cam)
    write_kitti(folder / 'trajectory.kitti', T_world_cam)
    meta = {'format_version': FORMAT_VERSION, 'num_frames': len(stamps_s),
            'num_points': len(points), **metadata}
    atomic_write_bytes(folder / 'metadata.json', json.dumps(meta, indent=2).encode())


def save_system(folder: Path, slam) -> None:
    """Save a SlamSystem: map, trajectory of rig camera 0, chunk Sim(3)s and its config."""
    est = slam.graph.estimates
    meta = {'config': asdict(slam.cfg),
            'chunks': [{'s': T.s, 'R': T.R.tolist(), 't': T.t.tolist()} for T in est],
            'loops_in_graph': len(slam.graph.loops)}
    save_result(folder, slam.map.points_world(est), slam.map.weight, slam.stamps_s(),
                slam.world_poses(), meta)


def load_result(folder: Path) -> SavedMap:
    folder = Path(folder)
    meta = json.loads((folder / 'metadata.json').read_text())
    if meta.get('format_version') != FORMAT_VERSION:
        raise InputError(f'{folder}: format_version {meta.get("format_version")} != '
                         f'{FORMAT_VERSION}')
    points, weight = read_ply(folder / 'map.ply')
    stamps, T = read_tum(folder / 'trajectory.tum')
    return SavedMap(points, weight, stamps, T, meta)
