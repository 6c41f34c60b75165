"""Images of the loop-database frames, kept so that a loop chunk can run the network on
frames that left the stream buffer long ago.

A real network needs the images of both loop windows; the stream buffer only holds the
current chunk. Keeping every image would grow with the frames (a 6-camera 1600x900 rig
is 26 MB per frame raw), so only the loop-database frames are kept, JPEG-encoded (about
0.2-0.3 MB per 1600x900 image at quality 95). The database itself skips revisited places
and can be thinned with LoopConfig.keyframe_every, so this grows with the places seen.
"""
from __future__ import annotations

import cv2
import numpy as np


class ImageArchive:
    """frame index -> N JPEG-encoded (H, W, 3) uint8 RGB images."""

    def __init__(self, quality: int = 95):
        self.quality = int(quality)
        self._frames: dict[int, tuple[bytes, ...]] = {}

    def __contains__(self, index: int) -> bool:
        return index in self._frames

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        return sum(len(b) for images in self._frames.values() for b in images)

    def put(self, index: int, images: tuple[np.ndarray, ...]):
        encoded = []
        for image in images:
            ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(image[..., ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise ValueError(f'frame {index}: JPEG encoding failed for {image.shape}')
            encoded.append(buf.tobytes())
        self._frames[int(index)] = tuple(encoded)

    def get(self, index: int) -> tuple[np.ndarray, ...]:
        """The N images of frame `index`, decoded to (H, W, 3) uint8 RGB."""
        return tuple(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].copy()
                     for b in self._frames[int(index)])

    def drop(self, indices):
        for i in indices:
            self._frames.pop(int(i), None)
