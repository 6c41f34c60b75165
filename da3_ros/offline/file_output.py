"""Per-set outputs as plain files: depth .npy per camera, fused-cloud PLY per set, or one
voxelised global PLY when the sets' poses in a world frame are known.

Depth files: <dir>/<camera>/<stamp_ns>.npy, (H, W) float32, NaN = invalid, metres when the
prediction is metric, else model units; <dir>/index.csv lists every file with its units and the
pinhole K (pixels of that depth image) so the depth back-projects without the bag.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from da3_ros.errors import ConfigError, InputError
from da3_ros.geometry.points import Points, transform_points, voxel_downsample
from da3_ros.offline.ply import write_ply
from da3_ros.offline.rig_frame import CameraSource, SetResult
from da3_ros.ros.depth.outputs import camera_view
from da3_ros.ros.pointcloud import cloud_to_points

INDEX_COLUMNS = ('set', 'stamp_ns', 'camera', 'frame_id', 'file', 'units', 'height', 'width',
                 'fx', 'fy', 'cx', 'cy')


class NpyDepthWriter:
    """SetConsumer: depth of every camera of every set as .npy, plus index.csv."""

    def __init__(self, folder: Path, cameras: tuple[CameraSource, ...], resolution: str):
        """folder: created here; resolution: 'network' or 'input' (as output_resolution)."""
        self.folder, self.resolution = Path(folder), resolution
        self.names = [c.name for c in cameras]
        for name in self.names:
            (self.folder / name).mkdir(parents=True)
        self._index = open(self.folder / 'index.csv', 'w', newline='')
        self._csv = csv.writer(self._index)
        self._csv.writerow(INDEX_COLUMNS)

    def consume(self, result: SetResult) -> None:
        pred = result.prediction
        for v, cam in enumerate(result.frame.inputs):
            view = camera_view(pred, v, cam.rgb, self.resolution)
            stamp_ns = cam.header.stamp.sec * 1_000_000_000 + cam.header.stamp.nanosec
            relative = f'{self.names[v]}/{stamp_ns}.npy'
            np.save(self.folder / relative, np.asarray(view.depth, dtype=np.float32))
            K = view.K
            self._csv.writerow([result.index, stamp_ns, self.names[v], cam.header.frame_id,
                                relative, 'm' if pred.is_metric else 'model',
                                *view.depth.shape, K[0, 0], K[1, 1], K[0, 2], K[1, 2]])

    def close(self, success: bool) -> None:
        self._index.close()


def fused_points(result: SetResult) -> tuple[Points, str]:
    """The set's fused cloud as Points and its frame (the fixed frame)."""
    cloud = result.outputs.fused_cloud
    if cloud is None:
        raise InputError('this model gives no camera poses, so no fused cloud (PLY) can be '
                         'made; use an any-view DA3 model')
    return cloud_to_points(cloud), cloud.header.frame_id


class SetPlyWriter:
    """SetConsumer: the fused rig cloud of every set as <folder>/set_<index>_<stamp_ns>.ply,
    in the set's fixed frame (the first camera's optical frame)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir()

    def consume(self, result: SetResult) -> None:
        points, _ = fused_points(result)
        write_ply(self.folder / f'set_{result.index:06d}_{result.frame.stamp_ns}.ply', points)

    def close(self, success: bool) -> None:
        pass


PoseLookup = Callable[[str, str, int], 'np.ndarray | None']


class GlobalPlyWriter:
    """SetConsumer: every set's fused cloud moved into world_frame and voxel-averaged into
    one map, written to `path` at close(). Sets whose pose is unknown are left out."""

    def __init__(self, path: Path, world_frame: str, pose: PoseLookup, voxel_size: float):
        """pose(world, frame, stamp_ns) -> (4, 4) T_world_frame or None; voxel_size > 0, in
        the cloud's units (metres only if the depth is metric)."""
        if not voxel_size > 0:
            raise ConfigError(f'the global PLY needs a voxel size > 0, got {voxel_size}')
        self.path, self.world_frame, self.pose = Path(path), world_frame, pose
        self.voxel_size = voxel_size
        self.map: Points | None = None
        self.placed = 0

    def consume(self, result: SetResult) -> None:
        points, frame = fused_points(result)
        T = self.pose(self.world_frame, frame, result.frame.stamp_ns)
        if T is None:
            return
        moved = transform_points(points, T)
        if self.map is not None:
            moved = Points(*(None if a is None or b is None else np.concatenate([a, b])
                             for a, b in zip((self.map.xyz, self.map.rgb, self.map.confidence),
                                             (moved.xyz, moved.rgb, moved.confidence),
                                             strict=True)))
        self.map = voxel_downsample(moved, self.voxel_size)
        self.placed += 1

    def close(self, success: bool) -> None:
        if not success:
            return
        if self.map is None:
            raise InputError(f'no set had a pose in {self.world_frame!r} (from the input\'s '
                             '/tf and /tf_static), so there is no global cloud')
        write_ply(self.path, self.map)
