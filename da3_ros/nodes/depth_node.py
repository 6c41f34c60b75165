"""Depth node: N synchronised cameras -> one multi-view DA3 call -> depth, clouds, poses.

    ros2 run da3_ros depth_node --ros-args --params-file <share>/config/depth_nuscenes_6cam.yaml

<share> is $(ros2 pkg prefix da3_ros)/share/da3_ros. Parameters: ros/depth/params.py; topics:
ros/depth/publishers.py and docs/nodes.md. Threads: the executor converts images and feeds the
synchroniser (ros/depth/inputs.py); one worker thread (ros/depth/worker.py) runs the network
on the newest set and builds its messages, which a publish thread sends meanwhile. Every error
is counted by cause in /diagnostics (ros/depth/drops.py). This module only wires ros/depth/.
"""
from __future__ import annotations

import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Header

from da3_ros.ros import qos
from da3_ros.ros.depth import frames, startup
from da3_ros.ros.depth.drops import DropLog
from da3_ros.ros.depth.inputs import CameraChecks, SyncFeed, camera_inputs, subscribe_cameras
from da3_ros.ros.depth.params import PARAMS, apply_live, check_model_for_mode, declare_depth_params
from da3_ros.ros.depth.pipeline import DepthPipeline
from da3_ros.ros.depth.publishers import DepthPublishers
from da3_ros.ros.depth.rig_tf import RigStaticTf
from da3_ros.ros.depth.worker import NewestSetWorker
from da3_ros.ros.diagnostics import CauseThrottle, DepthDiagnostics
from da3_ros.ros.live_params import LiveParameters
from da3_ros.ros.node_main import STOP_WAIT_S, run_node
from da3_ros.ros.publish_thread import PublishThread
from da3_ros.ros.tf_buffer import TfBuffer, TfListener


class DepthNode(Node):
    def __init__(self, predictor=None):
        super().__init__('da3_depth')
        self.cfg = cfg = declare_depth_params(self)
        self.calibration = startup.load_calibration(cfg)
        self.predictor = predictor or startup.make_predictor(cfg)
        if cfg.verify_onnx:
            startup.verify_engine(cfg, self.get_logger())
        backend = self.predictor.backend
        check_model_for_mode(cfg, backend.model_name, backend.is_anyview,
                             backend.supports_cameras)
        self.pipeline = DepthPipeline(self.predictor,
                                      startup.output_options(cfg, backend.model_name),
                                      check_device=cfg.check_device_path)
        names = [c.name for c in cfg.cameras]
        self.diag = DepthDiagnostics(names)
        self.drops = DropLog(self.diag, CauseThrottle(cfg.log_throttle_s), self.get_logger())
        self.checks = CameraChecks(cfg, self.calibration, self.drops)
        self.feed = SyncFeed(cfg, self.checks, self.drops, self._submit)
        self.tf_buffer = TfBuffer()
        self._tf_listener = TfListener(self, self.tf_buffer)
        self._lookup = frames.tf_lookup(self.tf_buffer, cfg.tf_tolerance_ns, self.drops.drop)
        # rig.source yaml: the calibration goes out on /tf_static (with tf the node reads it)
        self.rig_tf = (RigStaticTf(self, self.calibration, cfg.rig_base_frame, names,
                                   lambda: self.get_clock().now().nanoseconds)
                       if self.calibration is not None else None)
        self.pubs = DepthPublishers(
            self, cfg, qos.reliable(10) if cfg.reliable_outputs else qos.SENSOR_DATA)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.reliable(10))
        subscribe_cameras(self, cfg, self._on_image, self._on_info)
        self.publisher = PublishThread(self._publish, self.drops.publish_failed)
        self.worker = NewestSetWorker(self._process, self.drops.set_failed)
        self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        # `ros2 param set`: live parameters apply at once, the others are read-only
        self._live = LiveParameters(self, PARAMS, lambda values: apply_live(self.cfg, values),
                                    self._apply_config)
        self.get_logger().info(startup.startup_line(cfg, backend, self.pipeline.on_device))

    def _apply_config(self, cfg) -> None:
        """New live parameters (apply_live) -> publishers, synchroniser, throttle, outputs."""
        self.pubs.add(cfg.publish)
        self.feed.configure(cfg)
        self.drops.throttle.period_s = cfg.log_throttle_s
        self.pipeline.opts = startup.live_output_options(self.pipeline.opts, cfg)
        self.cfg = self.pubs.cfg = cfg

    def _rig_frame(self, index: int, msg) -> None:
        """rig.source yaml: learn the camera's frame; publish the rig on /tf_static."""
        if self.rig_tf is not None and self.rig_tf.observe(self.cfg.cameras[index].name,
                                                           msg.header.frame_id):
            self.get_logger().info(f'rig calibration on /tf_static: {self.rig_tf.describe()}')

    def _on_image(self, index: int, msg) -> None:
        self.diag.image_received(self.cfg.cameras[index].name)
        self._rig_frame(index, msg)
        self.feed.image(index, msg)

    def _on_info(self, index: int, msg) -> None:
        self.diag.info_received(name := self.cfg.cameras[index].name)
        self._rig_frame(index, msg)
        self.checks.camera_info(name, msg)

    def _submit(self, synced) -> None:
        self.diag.synced()
        if self.worker.submit(synced):
            self.drops.drop('busy', 'the network is still busy; kept only the newest set')

    def _process(self, synced, synced_at: float) -> None:
        """One set on the worker thread: K, rig extrinsics, frames, network, messages."""
        self.diag.stage('queue_wait', time.perf_counter() - synced_at)
        cfg, inputs, K = self.cfg, camera_inputs(self.cfg, synced), None
        self.checks.warn_mixed_sizes(inputs, self.pipeline.on_device)
        if cfg.needs_intrinsics:
            K, inputs = self.checks.intrinsics(inputs)
        T = (frames.rig_extrinsics(cfg, self.calibration, self.tf_buffer, inputs)
             if cfg.needs_extrinsics else None)
        where = frames.select_frames(cfg, inputs, T is not None, synced.stamp_ns, self._lookup)
        out = self.pipeline.run(inputs, K, T, synced.stamp_ns, where, self.diag.stage)
        if not self.worker.stopping:  # the node is stopping: the set in flight is not sent
            self.publisher.submit((out, synced_at))  # the next set starts while this publishes

    def _publish(self, item) -> None:
        """Publish one set's messages (publish thread)."""
        (out, synced_at), start = item, time.perf_counter()
        self.pubs.publish(out, self.cfg.publish)
        self.diag.stage('publish', time.perf_counter() - start)
        self.diag.stage('total', time.perf_counter() - synced_at)
        self.diag.processed()
        if (check := self.pipeline.new_device_check()) is not None:
            startup.log_device_check(check, self.get_logger())

    def _publish_diagnostics(self) -> None:
        header = Header(stamp=self.get_clock().now().to_msg())
        pending, sync_counts = self.feed.state()
        extra = {**frames.readiness(self.cfg, self.checks.ready(), self.tf_buffer),
                 'sync.pending': str(pending),
                 'device_path_check': startup.device_check_text(self.pipeline.device_check)}
        self.diag_pub.publish(self.diag.to_message(header, self.get_name(), sync_counts, extra))

    def destroy_node(self):
        """Stop taking sets, let the set in flight finish its network call without publishing
        it (up to STOP_WAIT_S), join the threads; then destroy the node."""
        self.worker.request_stop()
        self.feed.shutdown()
        self.worker.join(STOP_WAIT_S)
        self.publisher.stop()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(DepthNode, 'da3_depth', args)


if __name__ == '__main__':
    sys.exit(main())
