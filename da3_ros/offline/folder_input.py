"""A folder of images as a one-camera offline source, in file-name order.

Stamps are synthetic: start_ns + k * period (a folder has no time), frame_id is given. No
CameraInfo: DA3 estimates the intrinsics. An unreadable image stops the run with InputError,
because a folder is one recording and a hole in it would be silent.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from std_msgs.msg import Header

from da3_ros.errors import InputError
from da3_ros.offline.rig_frame import CameraSource, RigFrame
from da3_ros.ros.depth.outputs import CameraInput
from da3_ros.ros.tf_buffer import ns_to_stamp

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def synthetic_header(index: int, start_ns: int, period_ns: int, frame_id: str) -> Header:
    """Header of frame `index`: stamp start_ns + index * period_ns."""
    return Header(stamp=ns_to_stamp(start_ns + index * period_ns), frame_id=frame_id)


class FolderSource:
    """Images of one folder (not recursive) as single-camera sets."""

    passthrough = ()

    def __init__(self, path: str | Path, camera: CameraSource, frame_id: str,
                 period_ns: int, start_ns: int = 0, stride: int = 1):
        """period_ns > 0: stamp step between kept images; stride: keep every stride-th file."""
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f'{self.path} is not a folder')
        files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.files = files[::stride]
        if not self.files:
            raise InputError(f'{self.path} holds no images ({", ".join(IMAGE_SUFFIXES)})')
        self.cameras = (camera,)
        self.expected_sets = len(self.files)
        self.skipped: Counter = Counter()
        self._frame_id, self._period_ns, self._start_ns = frame_id, period_ns, start_ns

    def frames(self) -> Iterator[RigFrame]:
        for k, file in enumerate(self.files):
            bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if bgr is None or bgr.size == 0:
                raise InputError(f'cannot decode image {file}')
            header = synthetic_header(k, self._start_ns, self._period_ns, self._frame_id)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield RigFrame(self._start_ns + k * self._period_ns,
                           (CameraInput(self.cameras[0].name, header, rgb),), (None,))

    def world_pose(self, world_frame: str, frame: str, stamp_ns: int) -> np.ndarray | None:
        return None  # a folder carries no poses

    def close(self) -> None:
        pass
