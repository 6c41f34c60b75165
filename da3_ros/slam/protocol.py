"""What the SLAM asks of a network: one multi-view prediction per chunk (+ descriptors).

A frame is a synchronised set of N rig cameras; a chunk of F frames is one predictor call
with F * N views, ordered frame-major (frame 0 cam 0..N-1, frame 1 cam 0..N-1, ...).
The pose reported for a frame is that of rig camera 0.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from da3_ros.engine.prediction import Prediction
from da3_ros.errors import InputError


@dataclass(frozen=True)
class Rig:
    """Fixed rig geometry.

    T_cam0_cam: (N, 4, 4) float64, camera n -> camera 0 (metres); entry 0 is the identity
    """

    T_cam0_cam: np.ndarray

    @staticmethod
    def mono() -> Rig:
        return Rig(np.eye(4)[None])

    @property
    def num_cameras(self) -> int:
        return len(self.T_cam0_cam)


@dataclass(frozen=True)
class Frame:
    """One synchronised rig capture.

    index: position in the stream (0, 1, 2, ...)
    stamp_s: capture time, seconds
    images: N (H, W, 3) uint8 images, one per rig camera; empty for simulated frames
    cameras: rig camera indices of `images` when only some cameras are asked for (a
        surround-rig loop chunk runs the matching camera of each side only); None = all N
    """

    index: int
    stamp_s: float
    images: tuple[np.ndarray, ...] = ()
    cameras: tuple[int, ...] | None = None

    def camera_ids(self, num_cameras: int) -> tuple[int, ...]:
        """The rig cameras this frame's views come from, in view order."""
        return tuple(range(num_cameras)) if self.cameras is None else self.cameras

    def subset(self, cameras: tuple[int, ...]) -> Frame:
        """The same capture with only `cameras` (rig indices; images kept where present)."""
        images = tuple(self.images[c] for c in cameras) if self.images else ()
        return Frame(self.index, self.stamp_s, images, tuple(int(c) for c in cameras))


def frame_intrinsics(frames: Sequence[Frame], K_rig: np.ndarray | None) -> np.ndarray | None:
    """(S, 3, 3) K of every view of `frames` (frame-major) from the rig's (N, 3, 3)."""
    if K_rig is None:
        return None
    return np.concatenate([K_rig[list(f.camera_ids(len(K_rig)))] for f in frames])


@dataclass(frozen=True)
class ChunkOutput:
    """A predictor's answer for F frames of an N-camera rig.

    prediction: Prediction with S = F * N views (frame-major), world = the chunk's frame
    descriptors: (S, D) float32 L2-normalised global descriptors per view, or None
    """

    prediction: Prediction
    descriptors: np.ndarray | None = None

    def __post_init__(self):
        S = self.prediction.num_views
        if self.descriptors is not None and (self.descriptors.ndim != 2
                                             or len(self.descriptors) != S):
            raise InputError(f'descriptors must be ({S}, D), got {self.descriptors.shape}')


class ChunkPredictor(Protocol):
    def predict_chunk(self, frames: Sequence[Frame]) -> ChunkOutput:
        """Run the network once over all views of `frames`."""


class PredictorChunkAdapter:
    """Makes any engine Predictor a ChunkPredictor.

    predictor: object with predict(images, intrinsics=None, extrinsics=None) -> Prediction
    describe: optional callable images -> (S, D) descriptors, used when the prediction has
        none; build the Predictor with return_descriptors=True to get DA3's own pooled backbone
        tokens from the same forward. Neither: no loop retrieval
    intrinsics: optional (N, 3, 3) per rig camera, input pixels, repeated for every frame
    """

    def __init__(self, predictor, describe: Callable[[list], np.ndarray] | None = None,
                 intrinsics: np.ndarray | None = None):
        self.predictor = predictor
        self.describe = describe
        self.intrinsics = intrinsics

    def predict_chunk(self, frames: Sequence[Frame]) -> ChunkOutput:
        images = [image for frame in frames for image in frame.images]
        prediction = self.predictor.predict(images, intrinsics=frame_intrinsics(
            frames, self.intrinsics))
        # the network's own descriptors (Predictor(return_descriptors=True)) cost no extra pass
        descriptors = getattr(prediction, 'descriptors', None)
        if descriptors is None and self.describe is not None:
            descriptors = self.describe(images)
        return ChunkOutput(prediction, descriptors)
