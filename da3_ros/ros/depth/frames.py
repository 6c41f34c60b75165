"""Which frames a set's rig outputs go to, the transforms into them, and whether the rig's
frames are known yet.

DA3's world is the rig base frame when the rig's extrinsics are given (rig.source yaml or tf),
else the first camera's frame. The fused cloud and the poses go to fixed_frame and
pose_parent_frame (both default to that world), the Nav2 outputs to nav.base_frame; each
needs world -> frame from TF at the set's stamp. A transform TF cannot give yet skips only
the outputs that need it (counted, cause tf_<why>); the depth images still go out.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from da3_ros.ros.depth.nav_outputs import NAV_OUTPUTS
from da3_ros.ros.depth.outputs import CameraInput, Frames
from da3_ros.ros.depth.params import DepthConfig
from da3_ros.ros.depth.rig_calibration import RigCalibration, extrinsics_from_tf
from da3_ros.ros.errors import MessageError, TfError
from da3_ros.ros.tf_buffer import TfBuffer

# lookup(frame, world, stamp_ns) -> T_frame_world, or None when TF cannot give it yet
Lookup = Callable[[str, str, int], 'np.ndarray | None']


def select_frames(cfg: DepthConfig, inputs: list[CameraInput], rig_given: bool, stamp_ns: int,
                  lookup: Lookup) -> Frames:
    """The frames of one set's rig outputs and world -> each of them (lookup)."""
    world = cfg.rig_base_frame if rig_given else inputs[0].header.frame_id
    fixed = cfg.fixed_frame or world
    parent = cfg.pose_parent_frame or fixed
    nav = cfg.publish & set(NAV_OUTPUTS)
    return Frames(fixed, lookup(fixed, world, stamp_ns), parent,
                  lookup(parent, world, stamp_ns), not rig_given, cfg.nav_base_frame,
                  lookup(cfg.nav_base_frame, world, stamp_ns) if nav else None)


def tf_lookup(tf_buffer: TfBuffer, tolerance_ns: int,
              on_error: Callable[[str, str], None]) -> Lookup:
    """A Lookup from TF: identity when frame == world; on a TfError on_error(cause, text) with
    cause tf_<why> (unknown_frame, extrapolation, ...) and None."""
    def lookup(frame: str, world: str, stamp_ns: int) -> np.ndarray | None:
        if frame == world:
            return np.eye(4)
        try:
            return tf_buffer.lookup(frame, world, stamp_ns, tolerance_ns)
        except TfError as err:
            on_error(f'tf_{err.cause}', f'{world} -> {frame}: {err}')
            return None
    return lookup


def rig_extrinsics(cfg: DepthConfig, calibration: RigCalibration | None, tf_buffer: TfBuffer,
                   inputs: list[CameraInput]) -> np.ndarray:
    """(S, 4, 4) world(= rig.base_frame) -> camera, from the YAML or /tf_static;
    MessageError('no_rig_tf') while TF cannot give them."""
    if calibration is not None:
        return calibration.extrinsics([c.name for c in inputs])
    try:
        return extrinsics_from_tf(tf_buffer, cfg.rig_base_frame,
                                  [c.header.frame_id for c in inputs])
    except TfError as err:
        raise MessageError('no_rig_tf', str(err)) from err


def readiness(cfg: DepthConfig, camera_info_ready: bool, tf_buffer: TfBuffer) -> dict[str, str]:
    """Whether the next set has what it needs (diagnostics values): CameraInfo per camera and,
    with rig.source tf, how many frames TF connects to rig.base_frame (one per camera)."""
    values = {'camera_info.ready': str(camera_info_ready).lower()}
    ready = camera_info_ready
    if cfg.rig_source == 'tf':
        connected = connected_frames(tf_buffer, cfg.rig_base_frame)
        values['rig_tf.frames'] = str(connected)
        ready = ready and connected >= len(cfg.cameras)
    values['ready'] = str(ready).lower()
    return values


def connected_frames(tf_buffer: TfBuffer, base: str) -> int:
    """How many frames of the buffer other than base TF connects to base."""
    connected = 0
    for frame in tf_buffer.frames() - {base}:
        try:
            tf_buffer.lookup(frame, base)
            connected += 1
        except TfError:
            pass
    return connected
