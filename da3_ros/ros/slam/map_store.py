"""The SLAM node's map folder, saved atomically as a whole.

`save_path` is a symbolic link to a hidden sibling version folder (`.<name>.v<ns>`). A save
writes a new version folder completely (every file fsynced), then swaps the link with one
os.replace, which is atomic on POSIX: a process killed at any moment leaves `save_path`
pointing at either the previous complete map or the new complete one, never a mix. Leftover
version folders of an interrupted save are removed by the next save. A `save_path` that is a
real folder (e.g. copied by hand) is moved aside into a version folder first.

Folder contents: map_io's map.ply, trajectory.tum, trajectory.kitti, metadata.json (world =
the SLAM's internal frame), plus ros.json (frames, T_map_world) and trajectory_map.tum (the
tracked base frame in the map frame, as the node publishes it).

Why in the ROS shell though it imports nothing of ROS: the folder it
writes is the node's ~/save_map product, with the node's frame names and map-frame
trajectory (ros.json, trajectory_map.tum) beside the core's files; the core's own file format
is da3_ros/slam/map_io.py, which this module calls for map.ply and the trajectories.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from da3_ros.errors import InputError
from da3_ros.files import write_atomic
from da3_ros.slam.map_io import load_result
from da3_ros.slam.trajectory_io import read_tum


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _versions(link: Path) -> list[Path]:
    return sorted(link.parent.glob(f'.{link.name}.v*'))


def save_atomic(link: Path, write: Callable[[Path], None]) -> Path:
    """Call write(folder) on a fresh version folder, then point `link` at it atomically.

    Returns the version folder. If write raises, `link` is untouched and the partial folder
    is removed (a killed process leaves it behind; the next save removes it).
    """
    link = Path(link).absolute()
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() and not link.is_symlink():                 # a real folder: adopt it
        os.replace(link, link.parent / f'.{link.name}.v{time.time_ns() - 1}')
    version = link.parent / f'.{link.name}.v{time.time_ns()}'
    version.mkdir()
    try:
        write(version)
        for f in version.iterdir():
            with open(f, 'rb') as handle:
                os.fsync(handle.fileno())
        _fsync_dir(version)
        tmp_link = link.parent / f'.{link.name}.link{time.time_ns()}'
        os.symlink(version.name, tmp_link)
        os.replace(tmp_link, link)                              # the atomic switch
        _fsync_dir(link.parent)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    current = link.resolve()
    for old in _versions(link):
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)
    for stale in link.parent.glob(f'.{link.name}.link*'):
        stale.unlink(missing_ok=True)
    return version


def write_ros_metadata(folder: Path, frames: dict, T_map_world: np.ndarray,
                       stamps_ns: np.ndarray, T_map_base: np.ndarray) -> None:
    """ros.json (frames, T_map_world, integer stamps) and trajectory_map.tum."""
    from da3_ros.slam.trajectory_io import write_tum
    meta = {'frames': frames, 'T_map_world': np.asarray(T_map_world).tolist(),
            'stamps_ns': [int(s) for s in stamps_ns]}
    write_atomic(Path(folder) / 'ros.json', json.dumps(meta).encode())
    write_tum(Path(folder) / 'trajectory_map.tum', np.asarray(stamps_ns) * 1e-9, T_map_base)


@dataclass(frozen=True)
class LoadedMap:
    """A saved map in the map frame.

    points_map: (M, 3) float64; weight: (M,) float32; stamps_ns: (F,) int64
    T_map_base: (F, 4, 4) float64 tracked frame -> map; frames: {'map', 'base', 'camera', ...}
    """

    points_map: np.ndarray
    weight: np.ndarray
    stamps_ns: np.ndarray
    T_map_base: np.ndarray
    frames: dict
    metadata: dict


def load_map(folder: Path) -> LoadedMap:
    """Read a folder written by the SLAM node (through its link or a version folder)."""
    folder = Path(folder)
    if not (folder / 'ros.json').is_file():
        raise InputError(f'{folder}: no ros.json (not a SLAM node map)')
    saved = load_result(folder)
    ros = json.loads((folder / 'ros.json').read_text())
    T_map_world = np.asarray(ros['T_map_world'], np.float64)
    points = saved.points.astype(np.float64) @ T_map_world[:3, :3].T + T_map_world[:3, 3]
    _, T_map_base = read_tum(folder / 'trajectory_map.tum')
    return LoadedMap(points, saved.weight, np.asarray(ros['stamps_ns'], np.int64), T_map_base,
                     ros['frames'], saved.metadata)
