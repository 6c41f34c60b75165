"""The SLAM node's state without rclpy: a SlamSystem fed frame by frame, reset, saved, and
read out in ROS frames (map, odom, base).

Frames: the SlamSystem's world is its first chunk's reference view. The node's map frame is
the tracked base frame's pose at the first frame: T_map_world = (T_world_cam0(0) T_cam0_base)^-1,
fixed when the first chunk completes. The published pose of frame i is
T_map_base(i) = T_map_world T_world_cam0(i) T_cam0_base, in the SLAM's units (metres for a
metric model, model units otherwise).

Why in the ROS shell though it imports nothing of ROS: it is the SLAM
node's state, not the SLAM's. It reads the SlamSystem out in the node's REP-105 frames (map,
odom, the tracked base frame), times its calls for the node's diagnostics, and saves through
map_store.py, which writes the node's ros.json; the offline `da3-ros process` uses it to
produce what the node would. The pure core (da3_ros/slam/) knows only its own world frame.
Being ROS-free, it is tested without a running graph.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from da3_ros.geometry.sim3 import invert_se3
from da3_ros.ros.slam.map_store import save_atomic, write_ros_metadata
from da3_ros.slam.map_io import save_system
from da3_ros.slam.protocol import Frame
from da3_ros.slam.system import SlamSystem


@dataclass(frozen=True)
class FrameInput:
    """One synchronised set for the SLAM.

    stamp_ns: set stamp; images: N (H, W, 3) uint8 (input_mode cameras, else ())
    T_cam_base: (4, 4) tracked base frame -> camera 0 (identity when base = camera 0)
    T_odom_base: (4, 4) odometry at stamp_ns, or None without odometry
    extra: mode-specific payload handed to `on_frame` (e.g. a RigDepthFrame)
    """

    stamp_ns: int
    images: tuple = ()
    T_cam_base: np.ndarray = field(default_factory=lambda: np.eye(4))
    T_odom_base: np.ndarray | None = None
    extra: object = None


@dataclass
class ChunkTiming:
    chunk_ms: float = float('nan')
    network_ms: float = float('nan')


class SlamSession:
    """make_system() -> (SlamSystem, on_frame(index, FrameInput) or None); called again on
    reset, so every reset starts a fresh SLAM with a fresh predictor state."""

    def __init__(self, make_system: Callable[[], tuple[SlamSystem, Callable | None]]):
        self._make_system = make_system
        self.reset()

    def reset(self) -> None:
        self.slam, self._on_frame = self._make_system()
        self.stamps_ns: list[int] = []
        self.T_cam_base = np.eye(4)
        self.T_map_world: np.ndarray | None = None
        self.last_odom: tuple[int, np.ndarray] | None = None    # (frame index, T_odom_base)
        self.timing = ChunkTiming()

    @property
    def num_frames(self) -> int:
        return len(self.stamps_ns)

    @property
    def ready(self) -> bool:
        """At least one chunk processed (poses exist)."""
        return self.T_map_world is not None

    def add(self, frame: FrameInput) -> bool:
        """Feed one frame; True when a chunk completed (poses, map, loops changed)."""
        index = self.num_frames
        if self._on_frame is not None:
            self._on_frame(index, frame)
        if index == 0:
            self.T_cam_base = np.asarray(frame.T_cam_base, np.float64)
        self.stamps_ns.append(int(frame.stamp_ns))
        if frame.T_odom_base is not None:
            self.last_odom = (index, np.asarray(frame.T_odom_base, np.float64))
        return self._timed(lambda: self.slam.add_frame(
            Frame(index, frame.stamp_ns * 1e-9, tuple(frame.images))))

    def finish(self) -> bool:
        """End of stream (offline): run the last, shorter chunk; True when one ran."""
        return self._timed(self.slam.finish)

    def _timed(self, step: Callable) -> bool:
        """Run step() (-> ChunkWindow or None); after a chunk: timing, and the map frame once."""
        network_s, t0 = self.slam.stats.network_s, time.perf_counter()
        if step() is None:
            return False
        self.timing = ChunkTiming((time.perf_counter() - t0) * 1e3,
                                  (self.slam.stats.network_s - network_s) * 1e3)
        if self.T_map_world is None:
            T_world_base0 = self.slam.world_poses()[0] @ self.T_cam_base
            self.T_map_world = invert_se3(T_world_base0)
        return True

    # -- read-outs in the map frame -----------------------------------------------------
    def T_map_base(self) -> np.ndarray:
        """(F', 4, 4) poses of the F' frames with an estimate (a chunk's latency behind)."""
        return self.T_map_world[None] @ self.slam.world_poses() @ self.T_cam_base[None]

    def keyframes_map(self) -> np.ndarray:
        """(K, 4, 4) chunk reference frames (camera 0 optical) in the map frame, rigid."""
        out = []
        for T in self.slam.graph.estimates:
            M = np.eye(4)
            M[:3, :3], M[:3, 3] = T.R, T.t
            out.append(self.T_map_world @ M)
        return np.array(out).reshape(-1, 4, 4)

    def map_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(M, 3) float64 map-frame points and (M,) float32 weights of the global map."""
        world = self.slam.map.points_world(self.slam.graph.estimates)
        T = self.T_map_world
        return world @ T[:3, :3].T + T[:3, 3], self.slam.map.weight.copy()

    def loop_pairs(self) -> tuple[list, list]:
        """(accepted, rejected) (query, match) frame pairs: in the graph now / measured but
        never accepted or removed again."""
        stats = self.slam.stats
        accepted = list(stats.accepted_pairs)
        rejected = [p for p in stats.measured_pairs if p not in set(accepted)]
        return accepted, rejected

    def write(self, folder, frames: dict) -> None:
        """Write the map folder's files into an existing `folder` (see map_store)."""
        T_map_base = self.T_map_base()
        save_system(folder, self.slam)
        write_ros_metadata(folder, frames, self.T_map_world,
                           np.asarray(self.stamps_ns[:len(T_map_base)], np.int64), T_map_base)

    def save(self, folder, frames: dict) -> None:
        """Atomically write the map folder (see map_store)."""
        save_atomic(folder, lambda tmp: self.write(tmp, frames))
