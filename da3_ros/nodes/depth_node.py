"""Depth node: N synchronised cameras -> one multi-view DA3 call -> depth, clouds, poses.

    ros2 run da3_ros depth_node --ros-args --params-file <share>/config/depth_nuscenes_6cam.yaml

<share> is $(ros2 pkg prefix da3_ros)/share/da3_ros; relative paths in a params file mean its
folder (da3_ros/ros/param_paths.py).
Parameters: da3_ros/ros/depth_params.py. Per camera <ns> it subscribes <ns>/image_raw (or
.../compressed) and <ns>/camera_info and publishes <ns>/da3/{depth, confidence, camera_info,
points, depth_colorized}; for the rig da3/points (fused), da3/rig_depth, /tf (DA3 poses as
<frame>_da3), /diagnostics and, with rig.source yaml, the calibration on /tf_static
(da3_ros/ros/rig_tf.py).

Threads: the executor thread converts each raw image on arrival (so a bad message is dropped
alone) and feeds the synchroniser; compressed images are decoded on one thread per camera;
one worker thread runs the network on the newest complete set and builds its messages, which
one publish thread publishes while the worker goes on with the next set. While the worker is
busy, one newer set waits; a set overtaken by a newer one is dropped with cause 'busy'.
Nothing a message contains can stop the node: every error is counted by cause in /diagnostics
and logged at most once per cause per log_throttle_s.
"""
from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from da3_ros.engine.preprocess import mixed_sizes_note, plan_resize
from da3_ros.errors import ConfigError, InputError
from da3_ros.msg import RigDepth
from da3_ros.ros import qos
from da3_ros.ros.camera_info import camera_info_to_pinhole
from da3_ros.ros.depth_outputs import CameraInput, Frames, OutputOptions
from da3_ros.ros.depth_params import (
    PARAMS,
    apply_live,
    check_model_for_mode,
    declare_depth_params,
)
from da3_ros.ros.depth_pipeline import DepthPipeline
from da3_ros.ros.diagnostics import CauseThrottle, DepthDiagnostics
from da3_ros.ros.errors import MessageError, SyncError, TfError
from da3_ros.ros.image_conversion import compressed_to_rgb, copy_header, image_to_rgb
from da3_ros.ros.live_params import LiveParameters
from da3_ros.ros.node_main import STOP_WAIT_S, run_node
from da3_ros.ros.publish_thread import PublishThread
from da3_ros.ros.rig_calibration import extrinsics_from_tf, load_rig_calibration
from da3_ros.ros.rig_tf import RigStaticTf, check_base_frame
from da3_ros.ros.tf_buffer import TfBroadcaster, TfBuffer, TfListener
from da3_ros.ros.time_sync import ApproximateTimeSync, SyncedSet, stamp_to_ns

PER_CAMERA = {'depth': Image, 'confidence': Image, 'camera_info': CameraInfo,
              'cloud': PointCloud2, 'colorized_depth': Image}
TOPIC_NAMES = {'depth': 'depth', 'confidence': 'confidence', 'camera_info': 'camera_info',
               'cloud': 'points', 'colorized_depth': 'depth_colorized'}


def _make_predictor(cfg):
    """The configured Predictor; loading errors become ConfigErrors naming the parameter."""
    from da3_ros.engine.factory import make_predictor
    if cfg.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise ConfigError(f"parameter 'device': {cfg.device!r} but CUDA is not available")
    try:
        return make_predictor(cfg.model, cfg.backend, cfg.device, cfg.precision, cfg.model_file,
                              cfg.compile, process_res=cfg.process_res,
                              method=cfg.process_res_method,
                              align_to_input_scale=cfg.metric_mode != 'relative')
    except Exception as err:  # missing folder, unknown HF id, bad engine file, ...
        raise ConfigError(f"parameter 'model' ({cfg.model!r}, backend {cfg.backend}): "
                          f'{type(err).__name__}: {err}') from err


def _verify_engine(cfg, log) -> None:
    """verify_onnx set: the engine against ONNX Runtime on one seeded input (build-engine
    --verify); a mismatch or a missing ONNX Runtime is a ConfigError naming the parameter."""
    from da3_ros.engine.engine_verify import verify_engine
    try:
        diffs = verify_engine(cfg.model_file, cfg.verify_onnx, device=cfg.device)
    except Exception as err:  # EngineMismatch, no onnxruntime, an ONNX for another engine
        raise ConfigError(f"parameter 'verify_onnx': {type(err).__name__}: {err}") from err
    log.info('engine verified against ONNX Runtime (max relative): '
             + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))


class DepthNode(Node):
    def __init__(self, predictor=None):
        super().__init__('da3_depth')
        self.cfg = cfg = declare_depth_params(self)
        self.calibration = None
        if cfg.rig_source == 'yaml':
            try:
                self.calibration = load_rig_calibration(cfg.rig_calibration_file)
                self.calibration.extrinsics([c.name for c in cfg.cameras])
                check_base_frame(self.calibration, cfg.rig_base_frame)
            except ConfigError as err:
                raise ConfigError(f"parameter 'rig.calibration_file': {err}") from err
        self.predictor = predictor or _make_predictor(cfg)
        if cfg.verify_onnx:
            _verify_engine(cfg, self.get_logger())
        backend = self.predictor.backend
        check_model_for_mode(cfg, backend.model_name, backend.is_anyview,
                             backend.supports_cameras)
        self.options = OutputOptions(cfg.publish, cfg.output_resolution, cfg.cloud,
                                     cfg.remove_sky, cfg.fused_voxel_size_m,
                                     cfg.pose_frame_suffix, backend.model_name)
        self.pipeline = DepthPipeline(self.predictor, self.options,
                                      check_device=cfg.check_device_path)
        self._check_logged = False
        names = [c.name for c in cfg.cameras]
        self.diag = DepthDiagnostics(names)
        self.throttle = CauseThrottle(cfg.log_throttle_s)
        self.sync = ApproximateTimeSync(len(names), cfg.slop_ns, cfg.queue_size,
                                        cfg.max_wait_ns, cfg.max_jump_ns)
        self.infos = {}  # camera name -> latest valid Pinhole
        self._sizes_ok: set[tuple[int, int]] = set()   # image sizes the network can take
        self._warned: set = set()   # one-time warnings given (mixed sizes, distortion)
        self.tf_buffer = TfBuffer()
        self._tf_listener = TfListener(self, self.tf_buffer)
        self.tf_out = TfBroadcaster(self) if 'tf' in cfg.publish else None
        # rig.source yaml: the calibration goes out on /tf_static (with tf the node reads it)
        self.rig_tf = (RigStaticTf(self, self.calibration, cfg.rig_base_frame, names,
                                   lambda: self.get_clock().now().nanoseconds)
                       if self.calibration is not None else None)

        self._out_qos = qos.reliable(10) if cfg.reliable_outputs else qos.SENSOR_DATA
        self.cam_pubs, self.fused_pub, self.rig_pub = [{} for _ in cfg.cameras], None, None
        self._add_publishers(cfg.publish)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.reliable(10))

        in_qos = qos.reliable(cfg.queue_size) if cfg.reliable_inputs else qos.SENSOR_DATA
        for i, cam in enumerate(cfg.cameras):
            kind = CompressedImage if cam.compressed else Image
            self.create_subscription(kind, cam.image_topic,
                                     lambda m, i=i: self._on_image(i, m), in_qos)
            self.create_subscription(CameraInfo, cam.info_topic,
                                     lambda m, i=i: self._on_info(i, m), in_qos)

        # One decode thread per compressed camera: a set's JPEG decodes (~8-11 ms each for
        # 1600 x 900) run in parallel, since cv2 releases the GIL, and each camera's frames
        # stay in order. The synchroniser is shared by those threads, so it has a lock.
        self._decoders = [ThreadPoolExecutor(1, f'da3_decode_{c.name}') if c.compressed
                          else None for c in cfg.cameras]
        self._sync_lock = threading.Lock()
        self._pending = None  # (SyncedSet, perf_counter at sync) waiting for the worker
        self._wake = threading.Condition()
        self._stopping = False
        self.publisher = PublishThread(self._publish, self._publish_failed)
        self._worker = threading.Thread(target=self._work, name='da3_worker', daemon=True)
        self._worker.start()
        self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        # `ros2 param set`: live parameters apply at once, the others are read-only
        self._live = LiveParameters(self, PARAMS, lambda values: apply_live(self.cfg, values),
                                    self._apply_config)
        precision = getattr(backend, 'precision', None)
        self.get_logger().info(
            f'{backend.model_name} on {cfg.backend}/{cfg.device}'
            f'{f" {precision}" if precision else ""}{" compiled" * cfg.compile} '
            f'({"GPU-resident" if self.pipeline.on_device else "host"} outputs), {len(names)} '
            f'cameras {names}, metric_mode {cfg.metric_mode}, pose_conditioning '
            f'{cfg.pose_conditioning}')

    # ---- live parameters (ros2 param set) ------------------------------------------------
    def _add_publishers(self, publish: frozenset[str]) -> None:
        """Publishers for the outputs in `publish` that have none yet (also for an output
        switched on while running; one switched off keeps its publisher, idle)."""
        cam_pubs = [dict(pubs) for pubs in self.cam_pubs]
        for cam, pubs in zip(self.cfg.cameras, cam_pubs, strict=True):
            for out in PER_CAMERA.keys() & publish - pubs.keys():
                pubs[out] = self.create_publisher(
                    PER_CAMERA[out], f'{cam.output_prefix}/{TOPIC_NAMES[out]}', self._out_qos)
        ns = self.cfg.output_namespace
        if 'fused_cloud' in publish and self.fused_pub is None:
            self.fused_pub = self.create_publisher(PointCloud2, f'{ns}/points', self._out_qos)
        if 'rig_depth' in publish and self.rig_pub is None:
            self.rig_pub = self.create_publisher(RigDepth, f'{ns}/rig_depth', self._out_qos)
        if 'tf' in publish and self.tf_out is None:
            self.tf_out = TfBroadcaster(self)
        self.cam_pubs = cam_pubs  # one assignment: the publish thread sees old or new

    def _apply_config(self, cfg) -> None:
        """A configuration with new live parameters (apply_live) -> the running parts: the
        synchroniser, the outputs built from the next set, the publishers, the log throttle."""
        self._add_publishers(cfg.publish)
        with self._sync_lock:
            self.sync.configure(cfg.slop_ns, cfg.queue_size, cfg.max_wait_ns, cfg.max_jump_ns)
        self.throttle.period_s = cfg.log_throttle_s
        self.options = replace(self.options, publish=cfg.publish, cloud=cfg.cloud,
                               remove_sky=cfg.remove_sky,
                               fused_voxel_size_m=cfg.fused_voxel_size_m)
        self.pipeline.opts = self.options
        self.cfg = cfg

    # ---- executor thread: inputs -------------------------------------------------------
    def _warn(self, cause: str, text: str) -> None:
        if self.throttle.should_log(cause):
            self.get_logger().warning(f'dropped ({cause}): {text}; further drops of this '
                                      f'cause are counted in /diagnostics')

    def _rig_frame(self, index: int, msg) -> None:
        """rig.source yaml: learn the camera's frame; publish the rig on /tf_static."""
        if self.rig_tf is not None and self.rig_tf.observe(self.cfg.cameras[index].name,
                                                           msg.header.frame_id):
            self.get_logger().info(f'rig calibration on /tf_static: {self.rig_tf.describe()}')

    def _on_image(self, index: int, msg) -> None:
        self.diag.image_received(self.cfg.cameras[index].name)
        self._rig_frame(index, msg)
        if self._decoders[index] is not None:   # JPEG/PNG: decoded on the camera's thread
            self._decoders[index].submit(self._convert_and_sync, index, msg)
        else:
            self._convert_and_sync(index, msg)

    def _convert_and_sync(self, index: int, msg) -> None:
        cam = self.cfg.cameras[index]
        start = time.perf_counter()
        try:
            rgb = compressed_to_rgb(msg) if cam.compressed else image_to_rgb(msg)
            self._check_size(rgb.shape[:2])
            if not msg.header.frame_id:
                raise MessageError('no_frame_id', 'header.frame_id is empty')
            self.diag.stage('convert', time.perf_counter() - start)
            start = time.perf_counter()
            with self._sync_lock:
                try:
                    sets = self.sync.add(index, stamp_to_ns(msg.header.stamp),
                                         (copy_header(msg.header), rgb))
                finally:
                    events = self.sync.take_events()
            self.diag.stage('sync', time.perf_counter() - start)
        except SyncError as err:  # counted by the synchroniser itself
            self._warn(err.cause, f'{cam.name}: {err}')
            sets = []
        except MessageError as err:
            self.diag.drop(err.cause, cam.name)
            self._warn(err.cause, f'{cam.name}: {err}')
            return
        except Exception as err:  # never die on a message
            self.diag.drop('conversion_error', cam.name)
            self._warn('conversion_error', f'{cam.name}: {type(err).__name__}: {err}')
            return
        for event in events:  # counted by the synchroniser; time jumps: one line per jump
            name = self.cfg.cameras[event.input].name
            if event.cause != 'time_jump':
                self._warn(event.cause, f'{name}: {event.text}')
            elif self.throttle.should_log('time_jump'):
                self.get_logger().warning(f'{name}: {event.text}')
        for synced in sets:
            self._submit(synced)

    def _on_info(self, index: int, msg: CameraInfo) -> None:
        cam = self.cfg.cameras[index]
        self.diag.info_received(cam.name)
        self._rig_frame(index, msg)
        try:
            if pinhole := camera_info_to_pinhole(msg, self.cfg.needs_intrinsics):
                self.infos[cam.name] = pinhole  # None: uncalibrated (K 0), and no K needed
                self._note_distortion(cam.name, pinhole)
        except MessageError as err:
            self.diag.drop(err.cause, cam.name)
            self._warn(err.cause, f'{cam.name} CameraInfo: {err}')

    def _check_size(self, hw: tuple[int, int]) -> None:
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

    def _note_distortion(self, name: str, pinhole) -> None:
        """One warning per camera and distortion: DA3 runs on the image as it is, and what the
        published CameraInfo then says (docs/nodes.md, image sizes and distortion)."""
        key = ('distortion', name, pinhole.distortion_model, pinhole.D)
        if not pinhole.is_distorted or key in self._warned:
            return
        self._warned.add(key)
        text = (f'{name}: CameraInfo has {pinhole.describe_distortion()}; the depth is '
                f'computed on the image as it is (distorted, not undistorted)')
        if not self.cfg.needs_intrinsics:
            text += ('. Its K is not used (neither metric_model nor pose_conditioning): the '
                     "published CameraInfo has DA3's own pinhole K estimate and D = 0")
        elif pinhole.k_is_pinhole_part:
            text += ('. Its K is used as a pinhole K (close near the image centre only); the '
                     'published CameraInfo has that K scaled to the depth image with this '
                     'distortion_model and D; clouds back-project through K alone')
        else:
            text += (f'. Its K is not a pinhole K, and {self.cfg.metric_mode} / '
                     'pose_conditioning need one: its sets are dropped (cause '
                     'unsupported_distortion). Rectify the images first (image_proc) and '
                     'give the node the rectified images and CameraInfo')
        self.get_logger().warning(text)

    def _warn_mixed_sizes(self, inputs: list[CameraInput]) -> None:
        """One warning per combination of image sizes that differ within a set."""
        sizes = tuple(tuple(c.rgb.shape[:2]) for c in inputs)
        if ('sizes', sizes) in self._warned:
            return
        self._warned.add(('sizes', sizes))
        note = mixed_sizes_note([c.name for c in inputs], list(sizes), self.cfg.process_res,
                                self.cfg.process_res_method)
        if note:
            path = '; such sets take the host path' if self.pipeline.on_device else ''
            self.get_logger().warning(f'{note}{path} (logged once for these sizes)')

    def _submit(self, synced: SyncedSet) -> None:
        self.diag.synced()
        with self._wake:
            if self._pending is not None:
                self.diag.drop('busy')
                self._warn('busy', 'the network is still busy; kept only the newest set')
            self._pending = (synced, time.perf_counter())
            self._wake.notify()

    # ---- worker thread: network and outputs --------------------------------------------
    def _work(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                (synced, synced_at), self._pending = self._pending, None
            self.diag.stage('queue_wait', time.perf_counter() - synced_at)
            try:
                self._process(synced, synced_at)
            except MessageError as err:
                self.diag.drop(err.cause, err.source or 'rig')
                self._warn(err.cause, str(err))
            except Exception as err:  # a failing set must not stop the worker
                self.diag.drop('processing_error')
                self._warn('processing_error', f'{type(err).__name__}: {err}')

    def _publish_failed(self, err: Exception) -> None:
        self.diag.drop('publish_error')
        self._warn('publish_error', f'{type(err).__name__}: {err}')

    def _intrinsics(self, inputs: list[CameraInput]) -> tuple[np.ndarray, list[CameraInput]]:
        """(S, 3, 3) from the latest valid CameraInfo (else the calibration YAML's K), and the
        inputs with, for a distorted camera, the CameraInfo's (distortion_model, D) to
        publish with the depth. MessageError (the set is dropped, counted for the camera):
        info_size_mismatch, no_camera_info, or unsupported_distortion for a camera whose K
        is not a pinhole K (equidistant; an unknown model with non-zero D)."""
        Ks, out = [], []
        for cam in inputs:
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
                Ks.append(pinhole.K)
                out.append(replace(cam, distortion=distortion))
            elif self.calibration and self.calibration.cameras[cam.name].K is not None:
                Ks.append(self.calibration.cameras[cam.name].K)
                out.append(cam)
            else:
                raise MessageError('no_camera_info', f'{cam.name} has no valid CameraInfo yet',
                                   source=cam.name)
        return np.stack(Ks), out

    def _extrinsics(self, inputs: list[CameraInput]) -> np.ndarray:
        """(S, 4, 4) world(= rig.base_frame) -> camera, from the YAML or /tf_static."""
        if self.calibration is not None:
            return self.calibration.extrinsics([c.name for c in inputs])
        try:
            return extrinsics_from_tf(self.tf_buffer, self.cfg.rig_base_frame,
                                      [c.header.frame_id for c in inputs])
        except TfError as err:
            raise MessageError('no_rig_tf', str(err)) from err

    def _T_from_world(self, frame: str, world: str, stamp_ns: int):
        """T_frame_world, identity when equal, else from TF (None and counted if unknown)."""
        if frame == world:
            return np.eye(4)
        try:
            return self.tf_buffer.lookup(frame, world, stamp_ns, self.cfg.tf_tolerance_ns)
        except TfError as err:
            self.diag.drop(f'tf_{err.cause}')
            self._warn(f'tf_{err.cause}', f'{world} -> {frame}: {err}')
            return None

    def _process(self, synced: SyncedSet, synced_at: float) -> None:
        cfg = self.cfg
        inputs = [CameraInput(c.name, header, rgb)
                  for c, (header, rgb) in zip(cfg.cameras, synced.items, strict=True)]
        self._warn_mixed_sizes(inputs)
        K = None
        if cfg.needs_intrinsics:
            K, inputs = self._intrinsics(inputs)
        T = self._extrinsics(inputs) if cfg.needs_extrinsics else None
        world = cfg.rig_base_frame if T is not None else inputs[0].header.frame_id
        fixed = cfg.fixed_frame or world
        parent = cfg.pose_parent_frame or fixed
        frames = Frames(fixed, self._T_from_world(fixed, world, synced.stamp_ns), parent,
                        self._T_from_world(parent, world, synced.stamp_ns), T is None)
        out = self.pipeline.run(inputs, K, T, synced.stamp_ns, frames, self.diag.stage)
        if self._stopping:  # the node is stopping: the set in flight is not published
            return
        self.publisher.submit((out, synced_at))      # the next set starts while this publishes

    def _publish(self, item) -> None:
        """Publish one set's messages (publish thread)."""
        out, synced_at = item
        start = time.perf_counter()
        publish = self.cfg.publish  # an output switched off while this set was built: not sent
        for pubs, cam_out in zip(self.cam_pubs, out.cameras, strict=True):
            for name, pub in pubs.items():
                if name in publish and getattr(cam_out, name) is not None:
                    pub.publish(getattr(cam_out, name))
        if self.fused_pub is not None and 'fused_cloud' in publish and out.fused_cloud is not None:
            self.fused_pub.publish(out.fused_cloud)
        if self.tf_out is not None and 'tf' in publish and out.transforms:
            self.tf_out.send(out.transforms)
        if self.rig_pub is not None and 'rig_depth' in publish and out.rig_depth is not None:
            self.rig_pub.publish(out.rig_depth)
        self.diag.stage('publish', time.perf_counter() - start)
        self.diag.stage('total', time.perf_counter() - synced_at)
        self.diag.processed()
        if self.pipeline.device_check is not None and not self._check_logged:
            self._check_logged = True
            if self.pipeline.device_check:
                self.get_logger().error('device path check FAILED, the GPU messages differ '
                                        f'from the host path: {self.pipeline.device_check}')
            else:
                self.get_logger().info('device path check passed: the first set\'s GPU '
                                       'messages equal the host path\'s')

    # ---- diagnostics ---------------------------------------------------------------------
    def _readiness(self) -> dict[str, str]:
        """Whether the next set has what it needs: CameraInfo per camera, rig TF frames."""
        infos = not self.cfg.needs_intrinsics or self.calibration is not None or all(
            c.name in self.infos for c in self.cfg.cameras)
        values = {'camera_info.ready': str(infos).lower()}
        ready = infos
        if self.cfg.rig_source == 'tf':
            base = self.cfg.rig_base_frame
            connected = 0
            for frame in self.tf_buffer.frames() - {base}:
                try:
                    self.tf_buffer.lookup(frame, base)
                    connected += 1
                except TfError:
                    pass
            values['rig_tf.frames'] = str(connected)
            ready = ready and connected >= len(self.cfg.cameras)
        values['ready'] = str(ready).lower()
        return values

    def _publish_diagnostics(self) -> None:
        header = Header(stamp=self.get_clock().now().to_msg())
        check = self.pipeline.device_check
        with self._sync_lock:
            pending, sync_counts = self.sync.pending(), self.sync.counts()
        extra = {**self._readiness(), 'sync.pending': str(pending),
                 'device_path_check': ('not run' if check is None else
                                       'passed' if not check else f'failed: {check}')}
        self.diag_pub.publish(self.diag.to_message(header, self.get_name(), sync_counts,
                                                   extra))

    def destroy_node(self):
        """Stop taking sets, let the set in flight finish its network call without publishing
        it (up to STOP_WAIT_S), join the threads; then destroy the node."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        for decoder in self._decoders:
            if decoder is not None:
                decoder.shutdown(wait=True, cancel_futures=True)
        self._worker.join(timeout=STOP_WAIT_S)
        self.publisher.stop()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(DepthNode, 'da3_depth', args)


if __name__ == '__main__':
    sys.exit(main())
