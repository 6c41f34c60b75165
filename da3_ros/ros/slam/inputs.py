"""What feeds the SLAM node's SlamSystem: a chunk predictor per input mode (no rclpy here).

- NetworkChunkPredictor: input_mode cameras; one engine Predictor call per chunk, with the
  backbone's place descriptors (torch backend) for loop retrieval.
- RigDepthChunkPredictor: input_mode rig_depth; the depth node already ran the network per set,
  so a "chunk prediction" is assembled from the buffered RigDepth frames: their depth,
  confidence, K, and camera poses in a frame that is consistent over time (odom, or the
  RigDepth's own fixed frame). No descriptors, so no loop retrieval in this mode.
- The test-only simulated input (cfg.simulation, SlamNode(simulated=True)) comes from
  da3_ros.sim.predictor.make_simulated, imported only on that branch.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from da3_ros.engine.prediction import Prediction, ViewGeometry
from da3_ros.geometry.sim3 import invert_se3
from da3_ros.ros.errors import MessageError
from da3_ros.ros.image_conversion import image_to_float
from da3_ros.ros.tf_buffer import transform_to_matrix
from da3_ros.slam.protocol import ChunkOutput, Frame, Rig, frame_intrinsics


class NetworkChunkPredictor:
    """ChunkPredictor over an engine Predictor built with return_descriptors when available.

    intrinsics: (N, 3, 3) K per rig camera in input pixels, or None; the node sets it from
    CameraInfo (use_camera_info) before the first chunk
    """

    def __init__(self, predictor, intrinsics: np.ndarray | None = None):
        self.predictor, self.intrinsics = predictor, intrinsics

    def predict_chunk(self, frames: Sequence[Frame]) -> ChunkOutput:
        images = [image for frame in frames for image in frame.images]
        prediction = self.predictor.predict(images, intrinsics=frame_intrinsics(
            frames, self.intrinsics))
        return ChunkOutput(prediction, prediction.descriptors)


@dataclass(frozen=True)
class RigDepthFrame:
    """One RigDepth set, N cameras of equal size.

    depth, conf: (N, H, W) float32 (invalid depth -> conf 0, depth 0)
    K: (N, 3, 3) float64 pixels at depth's resolution
    T_world_cam: (N, 4, 4) float64 camera optical -> the consistent world frame
    """

    depth: np.ndarray
    conf: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    is_metric: bool


def rig_depth_frame(msg, T_world_fixed: np.ndarray) -> RigDepthFrame:
    """da3_ros/RigDepth -> RigDepthFrame; T_world_fixed: (4, 4) world <- msg.header.frame_id."""
    if not msg.cameras:
        raise MessageError('empty_rig_depth', 'RigDepth has no cameras')
    depth = np.stack([image_to_float(c.depth) for c in msg.cameras])
    conf = np.stack([image_to_float(c.confidence) for c in msg.cameras])
    if depth.shape != conf.shape or depth.ndim != 3:
        raise MessageError('size_mismatch', f'depth {depth.shape} vs confidence {conf.shape}')
    valid = np.isfinite(depth) & (depth > 0) & np.isfinite(conf)
    K = np.stack([np.asarray(c.camera_info.k, np.float64).reshape(3, 3) for c in msg.cameras])
    T = np.stack([T_world_fixed @ transform_to_matrix(c.t_fixed_camera) for c in msg.cameras])
    return RigDepthFrame(np.where(valid, depth, 0).astype(np.float32),
                         np.where(valid, conf, 0).astype(np.float32), K, T, bool(msg.is_metric))


class RigDepthChunkPredictor:
    """ChunkPredictor over buffered RigDepthFrames (keyed by SLAM frame index)."""

    def __init__(self):
        self.frames: dict[int, RigDepthFrame] = {}

    def add(self, index: int, frame: RigDepthFrame) -> None:
        if self.frames:
            first = next(iter(self.frames.values()))
            if frame.depth.shape != first.depth.shape:
                raise MessageError('size_mismatch', f'RigDepth depth {frame.depth.shape} != '
                                   f'{first.depth.shape} of earlier frames')
        self.frames[index] = frame

    def keep_only(self, indices) -> None:
        """Forget frames the SlamSystem no longer buffers."""
        keep = set(indices)
        self.frames = {i: f for i, f in self.frames.items() if i in keep}

    def predict_chunk(self, frames: Sequence[Frame]) -> ChunkOutput:
        data = [self.frames[f.index] for f in frames]
        T_world_cam = np.concatenate([d.T_world_cam for d in data])
        T_cam_ref = invert_se3(T_world_cam) @ T_world_cam[0]       # world = the first view
        depth = np.concatenate([d.depth for d in data])
        H, W = depth.shape[1:]
        view = ViewGeometry((H, W), (H, W), (1.0, 1.0), (0.0, 0.0))
        pred = Prediction(depth, np.concatenate([d.conf for d in data]), T_cam_ref,
                          np.concatenate([d.K for d in data]), (view,) * len(depth),
                          is_metric=all(d.is_metric for d in data))
        return ChunkOutput(pred, None)


def system_factory(cfg, predictor=None):
    """SlamNodeConfig (+ an engine Predictor for input_mode cameras, built once by the node)
    -> make_system() for SlamSession: (SlamSystem, on_frame) afresh on every call (reset)."""
    from da3_ros.slam.system import SlamSystem

    def make_system():
        if cfg.simulation is not None:     # test-only route; production never imports sim
            from da3_ros.sim.predictor import make_simulated
            sim, rig = make_simulated(cfg.simulation)
            return SlamSystem(sim, cfg.slam, rig=rig), None
        rig = Rig(np.tile(np.eye(4), (len(cfg.topics) if cfg.input_mode == 'cameras'
                                      else 1, 1, 1)))
        if cfg.input_mode == 'cameras':
            chunk_predictor = NetworkChunkPredictor(predictor)

            def on_frame(index, frame):
                if frame.extra is not None:          # CameraInfo K (use_camera_info)
                    chunk_predictor.intrinsics = frame.extra
            return SlamSystem(chunk_predictor, cfg.slam, rig=rig), on_frame
        chunk_predictor = RigDepthChunkPredictor()
        slam = None

        def on_rig_frame(index, frame):
            if index == 0:      # the rig's size is known from the first RigDepth only
                slam.rig = Rig(np.tile(np.eye(4), (len(frame.extra.depth), 1, 1)))
            if slam.rig.num_cameras != len(frame.extra.depth):
                raise MessageError('camera_count', f'RigDepth has {len(frame.extra.depth)} '
                                   f'cameras, the SLAM was started with {slam.rig.num_cameras}')
            chunk_predictor.add(index, frame.extra)
            chunk_predictor.keep_only(set(slam.buffer) | {index})
        slam = SlamSystem(chunk_predictor, cfg.slam, rig=rig)
        return slam, on_rig_frame
    return make_system
