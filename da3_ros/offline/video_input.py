"""A video file (anything cv2.VideoCapture opens) as a one-camera offline source.

Stamps: start_ns + frame index / fps (the container's nominal rate; variable-rate videos are
approximated). No CameraInfo: DA3 estimates the intrinsics.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from da3_ros.errors import InputError
from da3_ros.offline.folder_input import synthetic_header
from da3_ros.offline.rig_frame import CameraSource, RigFrame
from da3_ros.ros.depth.outputs import CameraInput


class VideoSource:
    """Frames of one video file as single-camera sets."""

    passthrough = ()

    def __init__(self, path: str | Path, camera: CameraSource, frame_id: str,
                 start_ns: int = 0, stride: int = 1, fallback_fps: float = 30.0):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f'{self.path} is not a file')
        capture = cv2.VideoCapture(str(self.path))
        opened = capture.isOpened()
        fps = capture.get(cv2.CAP_PROP_FPS) if opened else 0.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if opened else 0
        capture.release()
        if not opened:
            raise InputError(f'{self.path} is neither a rosbag2 folder, an image folder nor a '
                             'video that OpenCV can open')
        self.cameras = (camera,)
        self.expected_sets = -(-count // stride) if count > 0 else None
        self.skipped: Counter = Counter()
        self._period_ns = round(1e9 / (fps if fps > 0 else fallback_fps))
        self._frame_id, self._start_ns, self._stride = frame_id, start_ns, stride

    def frames(self) -> Iterator[RigFrame]:
        capture = cv2.VideoCapture(str(self.path))
        try:
            k, kept = 0, 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                k += 1
                if (k - 1) % self._stride:
                    continue
                header = synthetic_header(k - 1, self._start_ns, self._period_ns, self._frame_id)
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                kept += 1
                yield RigFrame(self._start_ns + (k - 1) * self._period_ns,
                               (CameraInput(self.cameras[0].name, header, rgb),), (None,))
        finally:
            capture.release()
        if kept == 0:
            raise InputError(f'{self.path}: OpenCV opened it but decoded no frame')

    def world_pose(self, world_frame: str, frame: str, stamp_ns: int) -> np.ndarray | None:
        return None  # a video carries no poses

    def close(self) -> None:
        pass
