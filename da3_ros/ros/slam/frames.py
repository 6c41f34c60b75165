"""The SLAM node's inputs: subscriptions -> FrameInput (images or RigDepth, plus the rig's
base and odometry transforms from TF), every drop reported by cause.

Runs in the executor thread (the TfBuffer is fed there too). A frame that cannot be used is
reported through `drop(cause, text)` and never reaches the SLAM:
- cameras: image conversion errors, sync drops, 'no_camera_info' (use_camera_info),
  'time_jump' (a stamp jumped by more than sync.max_jump_s: see time_sync);
- rig_depth: 'no_world_tf' (RigDepth's frame not connected to frames.odom), bad messages;
- both: 'no_base_tf' (frames.base not connected to the camera by TF within tf_wait_s),
  'no_odom_tf' (odom -> base missing at the frame's stamp: the frame goes on without odometry).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import astuple

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from da3_ros.msg import RigDepth
from da3_ros.ros import qos
from da3_ros.ros.camera_info import camera_info_to_pinhole
from da3_ros.ros.errors import MessageError, SyncError, TfError
from da3_ros.ros.image_conversion import compressed_to_rgb, image_to_rgb
from da3_ros.ros.slam.inputs import rig_depth_frame
from da3_ros.ros.slam.session import FrameInput
from da3_ros.ros.time_sync import ApproximateTimeSync, stamp_to_ns


class SlamFrames:
    def __init__(self, node, cfg, tf_buffer, emit: Callable[[FrameInput], None],
                 drop: Callable[[str, str], None]):
        self.cfg, self.tf, self.emit, self.drop = cfg, tf_buffer, emit, drop
        self.sets = 0
        self.camera_frame: str | None = None
        self.infos: dict[int, np.ndarray] = {}
        self.pending: deque = deque()   # frames waiting for their transforms
        in_qos = qos.reliable(100) if cfg.reliable_inputs else qos.SENSOR_DATA
        if cfg.input_mode == 'rig_depth':
            node.create_subscription(RigDepth, cfg.topics[0], self._on_rig_depth, in_qos)
            return
        self.sync = ApproximateTimeSync(len(cfg.topics), *astuple(cfg.sync))
        kind = CompressedImage if cfg.compressed else Image
        for i, topic in enumerate(cfg.topics):
            node.create_subscription(kind, topic, lambda m, i=i: self._on_image(i, m), in_qos)
            if cfg.use_camera_info:
                node.create_subscription(CameraInfo, cfg.info_topics[i],
                                         lambda m, i=i: self._on_info(i, m), in_qos)

    def _on_info(self, index: int, msg: CameraInfo) -> None:
        try:
            self.infos[index] = camera_info_to_pinhole(msg).K
        except MessageError as err:
            self.drop(err.cause, f'CameraInfo {index}: {err}')

    def _on_image(self, index: int, msg) -> None:
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
            try:
                sets = self.sync.add(index, stamp_to_ns(msg.header.stamp),
                                     (msg.header.frame_id, rgb))
            finally:
                for event in self.sync.take_events():  # a bag loop, a clock reset, a bad stamp
                    if event.cause == 'time_jump':
                        self.drop('time_jump', f'camera {event.input}: {event.text}')
        except SyncError as err:
            self.drop(err.cause, str(err))
            return
        except MessageError as err:
            self.drop(err.cause, f'camera {index}: {err}')
            return
        for synced in sets:
            K = None
            if self.cfg.use_camera_info:
                if len(self.infos) < len(self.cfg.topics):
                    self.drop('no_camera_info', 'waiting for CameraInfo of every camera')
                    continue
                K = np.stack([self.infos[i] for i in range(len(self.cfg.topics))])
            self._frame(synced.stamp_ns, synced.items[0][0],
                        tuple(rgb for _, rgb in synced.items), K)

    def _on_rig_depth(self, msg) -> None:
        stamp_ns, odom = stamp_to_ns(msg.header.stamp), self.cfg.odom_frame
        try:
            T_world_fixed = np.eye(4)
            if odom and msg.header.frame_id != odom:
                T_world_fixed = self.tf.lookup(odom, msg.header.frame_id, stamp_ns,
                                               self.cfg.tf_tolerance_ns)
            frame = rig_depth_frame(msg, T_world_fixed)
            camera = msg.cameras[0].depth.header.frame_id
        except TfError as err:
            self.drop('no_world_tf', f'{msg.header.frame_id} -> {odom}: {err}')
            return
        except MessageError as err:
            self.drop(err.cause, f'RigDepth: {err}')
            return
        self._frame(stamp_ns, camera, (), frame)

    def _frame(self, stamp_ns: int, camera: str, images: tuple, extra) -> None:
        self.sets += 1
        if (self.sets - 1) % self.cfg.frame_stride:
            return
        self.camera_frame = self.camera_frame or camera
        self.pending.append((stamp_ns, camera, images, extra))
        self.flush()

    def flush(self) -> None:
        """Emit waiting frames, in order, once their transforms are in TF (as tf2's message
        filter): a frame waits at most tf_wait_s of stamp time behind the newest frame."""
        wait_ns = self.cfg.tf_wait_ns
        while self.pending:
            stamp_ns, camera, images, extra = self.pending[0]
            expired = self.pending[-1][0] - stamp_ns > wait_ns
            try:
                T_cam_base, T_odom_base = self._transforms(stamp_ns, camera, expired)
            except TfError as err:
                if not expired:
                    return
                self.pending.popleft()
                self.drop('no_base_tf', f'{camera}: {err}')
                continue
            self.pending.popleft()
            self.emit(FrameInput(stamp_ns, images, T_cam_base, T_odom_base, extra))

    def _transforms(self, stamp_ns: int, camera: str, expired: bool):
        """(T_cam_base, T_odom_base or None); raises TfError while the base is unknown."""
        base, odom = self.cfg.base_frame or camera, self.cfg.odom_frame
        T_cam_base = np.eye(4) if base == camera else self.tf.lookup(camera, base)
        if not odom or odom not in self.tf.frames():
            return T_cam_base, None
        try:
            return T_cam_base, self.tf.lookup(odom, base, stamp_ns, self.cfg.tf_tolerance_ns)
        except TfError as err:
            if not expired:
                raise
            self.drop('no_odom_tf', f'{base} -> {odom}: {err}')
            return T_cam_base, None
