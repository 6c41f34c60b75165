"""The depth node's inputs per camera: image conversion and checks, the latest valid
CameraInfo, K per set, one-time warnings (distortion, mixed sizes), and the synchroniser feed.

A bad message raises MessageError with a cause; the node counts it for its camera and drops it
alone. Warnings that only inform (distortion, mixed sizes) are logged once per camera and
setting, since they repeat with every message.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from da3_ros.engine.preprocess import mixed_sizes_note, plan_resize
from da3_ros.errors import InputError
from da3_ros.ros import qos
from da3_ros.ros.camera_info import Pinhole, camera_info_to_pinhole
from da3_ros.ros.depth.drops import DropLog
from da3_ros.ros.depth.outputs import CameraInput
from da3_ros.ros.depth.params import CameraSpec, DepthConfig
from da3_ros.ros.depth.rig_calibration import RigCalibration
from da3_ros.ros.errors import MessageError, SyncError
from da3_ros.ros.image_conversion import compressed_to_rgb, copy_header, image_to_rgb
from da3_ros.ros.time_sync import ApproximateTimeSync, SyncedSet, stamp_to_ns


class CameraChecks:
    """Per-camera state: the latest valid Pinhole per camera, the image sizes the network can
    take, and the one-time warnings given (drops.logger)."""

    def __init__(self, cfg: DepthConfig, calibration: RigCalibration | None, drops: DropLog):
        self.cfg, self.calibration, self.drops = cfg, calibration, drops
        self.infos: dict[str, Pinhole] = {}
        self._sizes_ok: set[tuple[int, int]] = set()
        self._warned: set = set()

    def convert(self, cam: CameraSpec, msg) -> np.ndarray:
        """RGB uint8 (H, W, 3) of one Image / CompressedImage; MessageError when it cannot be
        used (bad encoding, too small for the network, no frame_id)."""
        rgb = compressed_to_rgb(msg) if cam.compressed else image_to_rgb(msg)
        self.check_size(rgb.shape[:2])
        if not msg.header.frame_id:
            raise MessageError('no_frame_id', 'header.frame_id is empty')
        return rgb

    def check_size(self, hw: tuple[int, int]) -> None:
        """MessageError('image_too_small') for an image the network cannot take: a side below
        one 14 px patch, or one that would fall below it at process_res."""
        if hw in self._sizes_ok:
            return
        try:
            plan_resize(*hw, self.cfg.process_res, self.cfg.process_res_method)
        except InputError as err:
            raise MessageError('image_too_small', f'{err}; too small for the network, not '
                               f'processed') from err
        self._sizes_ok.add(hw)

    def camera_info(self, name: str, msg) -> None:
        """Keep a valid CameraInfo as the camera's Pinhole; drop (counted) one that is not."""
        try:
            if pinhole := camera_info_to_pinhole(msg, self.cfg.needs_intrinsics):
                self.infos[name] = pinhole  # None: uncalibrated (K 0), and no K needed
                self.note_distortion(name, pinhole)
        except MessageError as err:
            self.drops.drop(err.cause, f'{name} CameraInfo: {err}', name)

    def ready(self) -> bool:
        """Whether every camera has the K the next set needs."""
        return (not self.cfg.needs_intrinsics or self.calibration is not None
                or all(c.name in self.infos for c in self.cfg.cameras))

    def note_distortion(self, name: str, pinhole: Pinhole) -> None:
        """One warning per camera and distortion: DA3 runs on the image as it is, and what the
        published CameraInfo then says (docs/nodes.md, image sizes and distortion)."""
        key = ('distortion', name, pinhole.distortion_model, pinhole.D)
        if not pinhole.is_distorted or key in self._warned:
            return
        self._warned.add(key)
        self.drops.logger.warning(distortion_warning(name, pinhole, self.cfg))

    def warn_mixed_sizes(self, inputs: list[CameraInput], on_device: bool) -> None:
        """One warning per combination of image sizes that differ within a set."""
        sizes = tuple(tuple(c.rgb.shape[:2]) for c in inputs)
        if ('sizes', sizes) in self._warned:
            return
        self._warned.add(('sizes', sizes))
        note = mixed_sizes_note([c.name for c in inputs], list(sizes), self.cfg.process_res,
                                self.cfg.process_res_method)
        if note:
            path = '; such sets take the host path' if on_device else ''
            self.drops.logger.warning(f'{note}{path} (logged once for these sizes)')

    def intrinsics(self, inputs: list[CameraInput]) -> tuple[np.ndarray, list[CameraInput]]:
        """(S, 3, 3) from the latest valid CameraInfo (else the calibration YAML's K), and the
        inputs with, for a distorted camera, the CameraInfo's (distortion_model, D) to
        publish with the depth. MessageError (the set is dropped, counted for the camera):
        info_size_mismatch, no_camera_info, or unsupported_distortion for a camera whose K
        is not a pinhole K (equidistant; an unknown model with non-zero D)."""
        Ks, out = [], []
        for cam in inputs:
            K, cam = self._camera_K(cam)
            Ks.append(K)
            out.append(cam)
        return np.stack(Ks), out

    def _camera_K(self, cam: CameraInput) -> tuple[np.ndarray, CameraInput]:
        pinhole = self.infos.get(cam.name)
        if pinhole is not None:
            pinhole.check_image_size(*cam.rgb.shape[:2], camera=cam.name)
            if not pinhole.k_is_pinhole_part:
                raise MessageError(
                    'unsupported_distortion', f'{cam.name}: CameraInfo has '
                    f'{pinhole.describe_distortion()}, not a pinhole K; '
                    f'{self.cfg.metric_mode} / pose_conditioning need rectified images',
                    source=cam.name)
            distortion = ((pinhole.distortion_model, pinhole.D) if pinhole.is_distorted
                          else None)
            return pinhole.K, replace(cam, distortion=distortion)
        if self.calibration and self.calibration.cameras[cam.name].K is not None:
            return self.calibration.cameras[cam.name].K, cam
        raise MessageError('no_camera_info', f'{cam.name} has no valid CameraInfo yet',
                           source=cam.name)


def distortion_warning(name: str, pinhole: Pinhole, cfg: DepthConfig) -> str:
    """What the node does with a distorted camera, for the one warning it logs about it."""
    text = (f'{name}: CameraInfo has {pinhole.describe_distortion()}; the depth is computed '
            f'on the image as it is (distorted, not undistorted)')
    if not cfg.needs_intrinsics:
        return text + ('. Its K is not used (neither metric_model nor pose_conditioning): the '
                       "published CameraInfo has DA3's own pinhole K estimate and D = 0")
    if pinhole.k_is_pinhole_part:
        return text + ('. Its K is used as a pinhole K (close near the image centre only); the '
                       'published CameraInfo has that K scaled to the depth image with this '
                       'distortion_model and D; clouds back-project through K alone')
    return text + (f'. Its K is not a pinhole K, and {cfg.metric_mode} / '
                   'pose_conditioning need one: its sets are dropped (cause '
                   'unsupported_distortion). Rectify the images first (image_proc) and '
                   'give the node the rectified images and CameraInfo')


def camera_inputs(cfg: DepthConfig, synced: SyncedSet) -> list[CameraInput]:
    """One synchronised set as the pipeline's per-camera inputs, in camera order."""
    return [CameraInput(c.name, header, rgb)
            for c, (header, rgb) in zip(cfg.cameras, synced.items, strict=True)]


def subscribe_cameras(node, cfg: DepthConfig, on_image, on_info) -> None:
    """Per camera its image (raw or compressed) and CameraInfo subscriptions;
    on_image(index, msg), on_info(index, msg) get the camera's index in cfg.cameras."""
    in_qos = qos.reliable(cfg.queue_size) if cfg.reliable_inputs else qos.SENSOR_DATA
    for i, cam in enumerate(cfg.cameras):
        node.create_subscription(CompressedImage if cam.compressed else Image, cam.image_topic,
                                 lambda m, i=i: on_image(i, m), in_qos)
        node.create_subscription(CameraInfo, cam.info_topic, lambda m, i=i: on_info(i, m),
                                 in_qos)


class SyncFeed:
    """Converts images and feeds the synchroniser. A compressed camera is decoded on a thread
    of its own: a set's JPEG decodes (~8-11 ms each for 1600 x 900) run in parallel, since cv2
    releases the GIL, and each camera's frames stay in order. Those threads share the
    synchroniser, so it has a lock. on_set(synced) gets each completed set."""

    def __init__(self, cfg: DepthConfig, checks: CameraChecks, drops: DropLog,
                 on_set: Callable[[SyncedSet], None]):
        self.cfg, self.checks, self.drops, self._on_set = cfg, checks, drops, on_set
        self.sync = ApproximateTimeSync(len(cfg.cameras), cfg.slop_ns, cfg.queue_size,
                                        cfg.max_wait_ns, cfg.max_jump_ns)
        self.lock = threading.Lock()
        self._decoders = [ThreadPoolExecutor(1, f'da3_decode_{c.name}') if c.compressed
                          else None for c in cfg.cameras]

    def image(self, index: int, msg) -> None:
        """One image message of camera index (executor thread)."""
        if self._decoders[index] is not None:   # JPEG/PNG: decoded on the camera's thread
            self._decoders[index].submit(self.convert_and_sync, index, msg)
        else:
            self.convert_and_sync(index, msg)

    def configure(self, cfg: DepthConfig) -> None:
        """New live sync parameters (ros2 param set)."""
        with self.lock:
            self.sync.configure(cfg.slop_ns, cfg.queue_size, cfg.max_wait_ns, cfg.max_jump_ns)
        self.cfg = self.checks.cfg = cfg

    def state(self):
        """(pending per input, SyncCounts), read under the lock."""
        with self.lock:
            return self.sync.pending(), self.sync.counts()

    def shutdown(self) -> None:
        for decoder in self._decoders:
            if decoder is not None:
                decoder.shutdown(wait=True, cancel_futures=True)

    def convert_and_sync(self, index: int, msg) -> None:
        """Convert one image and add it to the synchroniser; a message that cannot be used is
        counted for its camera and dropped alone."""
        name, diag = self.cfg.cameras[index].name, self.drops.diag
        start = time.perf_counter()
        try:
            rgb = self.checks.convert(self.cfg.cameras[index], msg)
            diag.stage('convert', time.perf_counter() - start)
            start = time.perf_counter()
            sets, rejected, events = self._add(index, msg, rgb)
            if rejected is None:
                diag.stage('sync', time.perf_counter() - start)
        except MessageError as err:
            return self.drops.drop(err.cause, f'{name}: {err}', name)
        except Exception as err:  # never die on a message
            return self.drops.drop('conversion_error', f'{name}: {type(err).__name__}: {err}',
                                   name)
        if rejected is not None:  # counted by the synchroniser itself
            self.drops.warn(rejected.cause, f'{name}: {rejected}')
        self._log_events(events)
        for synced in sets:
            self._on_set(synced)

    def _add(self, index: int, msg, rgb: np.ndarray):
        """(sets completed, the SyncError that rejected the image or None, events)."""
        stamp_ns, item = stamp_to_ns(msg.header.stamp), (copy_header(msg.header), rgb)
        with self.lock:
            try:
                return self.sync.add(index, stamp_ns, item), None, self.sync.take_events()
            except SyncError as err:
                return [], err, self.sync.take_events()

    def _log_events(self, events) -> None:
        """Events are counted by the synchroniser; time jumps: one line per jump."""
        for event in events:
            name = self.cfg.cameras[event.input].name
            if event.cause != 'time_jump':
                self.drops.warn(event.cause, f'{name}: {event.text}')
            elif self.drops.throttle.should_log('time_jump'):
                self.drops.logger.warning(f'{name}: {event.text}')
