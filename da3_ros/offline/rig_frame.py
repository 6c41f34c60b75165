"""What every offline source yields: one synchronised camera set, and the source contract."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from da3_ros.engine.prediction import Prediction
from da3_ros.ros.camera_info import Pinhole
from da3_ros.ros.depth.outputs import CameraInput, RigOutputs


@dataclass(frozen=True)
class CameraSource:
    """One input camera. name: e.g. 'CAM_FRONT'; namespace: e.g. '/CAM_FRONT', where its
    outputs go (<namespace>/da3/depth, ...), as the depth node does."""

    name: str
    namespace: str


@dataclass(frozen=True)
class RigFrame:
    """One synchronised set, cameras in source order.

    stamp_ns: the set's stamp (newest image stamp), ns
    inputs: per camera its image header (stamp, optical frame) and rgb (H, W, 3) uint8
    pinholes: per camera the latest valid CameraInfo (K, size) at that time, or None
    """

    stamp_ns: int
    inputs: tuple[CameraInput, ...]
    pinholes: tuple[Pinhole | None, ...]

    def intrinsics(self) -> np.ndarray | None:
        """(S, 3, 3) K in input pixels when every camera has a CameraInfo, else None."""
        if any(p is None for p in self.pinholes):
            return None
        return np.stack([p.K for p in self.pinholes])


@dataclass(frozen=True)
class RawMessage:
    """A serialised message copied through unchanged (e.g. /tf_static).

    data: CDR bytes; msgtype: 'tf2_msgs/msg/TFMessage'; msgdef: its ros2msg definition text
    qos: rosbags Qos profiles offered by the recorder (kept so playback latches /tf_static)
    """

    topic: str
    msgtype: str
    msgdef: str
    stamp_ns: int
    data: bytes
    qos: tuple = ()


@dataclass(frozen=True)
class SetResult:
    """What a consumer gets per processed set.

    index: 0, 1, ... in processing order; frame: the input set; prediction: the Predictor's
    result (views in frame order); outputs: every message the depth node would publish for it.
    prediction and outputs are None when the run makes no per-set forward (--slam alone).
    """

    index: int
    frame: RigFrame
    prediction: Prediction | None
    outputs: RigOutputs | None


class SetConsumer(Protocol):
    """One stage after the network: a bag writer, file writers, the SLAM stage."""

    def consume(self, result: SetResult) -> None: ...

    def close(self, success: bool) -> None:
        """Release files, and on success finish writing; called once at the end of every run
        (a failed run's staged outputs are deleted afterwards)."""
        ...


class RigSource(Protocol):
    """An offline input. `frames()` may be iterated once; errors raise InputError."""

    cameras: tuple[CameraSource, ...]
    expected_sets: int | None        # for the progress bar; None if unknown
    passthrough: tuple[RawMessage, ...]
    skipped: Counter                 # cause -> messages or frames dropped while reading

    def frames(self) -> Iterator[RigFrame]: ...

    def world_pose(self, world_frame: str, frame: str, stamp_ns: int) -> np.ndarray | None:
        """(4, 4) T_world_frame at stamp_ns from the input's own TF, or None if unknown."""
        ...
