"""SLAM node: camera sets (or the depth node's RigDepth) -> chunked DA3 SLAM -> map, TF, path.

    ros2 run da3_ros slam_node --ros-args --params-file my_slam.yaml

Parameters: da3_ros/ros/slam/params.py. Publishes /tf (map->odom while odom->base exists,
else map->base, never a frame another node parents), ~/path, ~/keyframes (PoseArray),
~/map (PointCloud2, throttled), ~/loop_closures (MarkerArray), ~/status (da3_ros/SlamStatus),
/diagnostics, and once at start with map.load_path ~/prior_map, ~/prior_path (latched).
Services ~/save_map and ~/reset (std_srvs/Trigger). One worker thread runs the SLAM.
"""
from __future__ import annotations

import sys
import threading
from collections import Counter, deque
from dataclasses import astuple, replace

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_srvs.srv import Trigger

from da3_ros.errors import ConfigError, Da3RosError
from da3_ros.ros import qos
from da3_ros.ros.diagnostics import CauseThrottle
from da3_ros.ros.live_params import LiveParameters
from da3_ros.ros.node_main import STOP_WAIT_S, run_node
from da3_ros.ros.slam import outputs as out
from da3_ros.ros.slam.frames import SlamFrames
from da3_ros.ros.slam.inputs import system_factory
from da3_ros.ros.slam.params import SLAM_PARAMS, apply_live_slam, declare_slam_params
from da3_ros.ros.slam.publishers import SlamPublishers
from da3_ros.ros.slam.session import SlamSession
from da3_ros.ros.tf_buffer import TfBuffer, TfListener
from da3_ros.ros.time_sync import seconds_to_ns


def _make_predictor(cfg):
    if cfg.simulation is not None or cfg.input_mode == 'rig_depth':
        return None
    from da3_ros.engine.factory import make_predictor
    try:
        return make_predictor(cfg.model, cfg.backend, cfg.device, cfg.precision,
                              cfg.model_file, process_res=cfg.process_res,
                              return_descriptors=cfg.backend == 'torch')
    except Exception as err:
        raise ConfigError(f"parameter 'model' ({cfg.model!r}): {err}") from err


class SlamNode(Node):
    def __init__(self, predictor=None, simulated: bool = False):
        """simulated: the node tests' simulated predictor instead of the network, configured
        by ros/slam/params.py SIMULATION_PARAMS (test/nodes/simulated_slam_node.py)."""
        super().__init__('da3_slam')
        self.cfg = cfg = declare_slam_params(self, simulated)
        self.session = SlamSession(system_factory(cfg, predictor or _make_predictor(cfg)))
        self.tf_buffer = TfBuffer()
        self._tf_listener = TfListener(self, self.tf_buffer)
        self.drops, self.throttle = Counter(), CauseThrottle(cfg.log_throttle_s)
        self.out = SlamPublishers(self, cfg, self.tf_buffer, lambda: self.frames.camera_frame)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.reliable(10))
        self.queue, self.wake, self.lock = deque(), threading.Condition(), threading.Lock()
        self.stopping = False
        self.frames = SlamFrames(self, cfg, self.tf_buffer, self._enqueue, self._drop)
        self.create_service(Trigger, '~/save_map', self._save)
        self.create_service(Trigger, '~/reset', self._reset)
        self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        self._republish_timer = self.create_timer(max(cfg.tf_period_s, 0.05),
                                                  self._republish)
        # `ros2 param set`: live parameters apply at once, the others are read-only
        self._live = LiveParameters(self, SLAM_PARAMS,
                                    lambda values: apply_live_slam(self.cfg, values),
                                    self._apply_config)
        if cfg.map_load_path:
            self.out.publish_prior(cfg.map_load_path)
        with self.lock:
            self._last_summary = self._summary()    # what diagnostics show during a chunk
        source = (cfg.topics[0] if cfg.input_mode == 'rig_depth'
                  else f'{len(cfg.cameras)} cameras {list(cfg.cameras)}')
        network = ('simulated predictor (test)' if cfg.simulation is not None else
                   f'{cfg.model} on {cfg.backend}/{cfg.device} {cfg.precision}')
        loops = 'on' if cfg.slam.loops_enabled else 'off'
        self.get_logger().info(
            f'SLAM on {source}: {network}, chunks of {cfg.slam.chunk.size} frames '
            f'(overlap {cfg.slam.chunk.overlap}), loops {loops}')
        self.worker = threading.Thread(target=self._work, name='da3_slam_worker', daemon=True)
        self.worker.start()

    def _apply_config(self, cfg) -> None:
        """A configuration with new live parameters (apply_live_slam) -> the running parts;
        they read it at their next use (publishers: map period and voxel; frames)."""
        self.cfg = self.out.cfg = self.frames.cfg = cfg
        if (sync := getattr(self.frames, 'sync', None)) is not None:  # input_mode cameras
            sync.configure(*astuple(cfg.sync))
        self.throttle.period_s = cfg.log_throttle_s
        self._republish_timer.timer_period_ns = seconds_to_ns(max(cfg.tf_period_s, 0.05))

    def _drop(self, cause: str, text: str) -> None:
        self.drops[cause] += 1
        if self.throttle.should_log(cause):
            self.get_logger().warning(f'dropped ({cause}): {text}')

    def _enqueue(self, frame) -> None:
        with self.wake:
            if len(self.queue) >= self.cfg.queue_size:
                self.queue.popleft()
                self._drop('queue_full', 'the SLAM is behind; dropped the oldest frame')
            self.queue.append(frame)
            self.wake.notify()

    def _work(self) -> None:
        while True:
            with self.wake:
                while not self.queue and not self.stopping:
                    self.wake.wait()
                if self.stopping:
                    return
                frame = self.queue.popleft()
            try:
                with self.lock:
                    if self.session.add(frame) and not self.stopping:  # stopping: no output
                        problem = self.out.publish_chunk(self.session, frame.stamp_ns,
                                                         sum(self.drops.values()))
                        if problem:
                            self._drop('tf_owned', problem)
            except Da3RosError as err:
                self._drop(getattr(err, 'cause', type(err).__name__), str(err))
            except Exception as err:  # never die on a frame
                self._drop('slam_error', f'{type(err).__name__}: {err}')

    def _republish(self) -> None:
        self.frames.flush()
        if self.lock.acquire(blocking=False):       # never stall inputs behind a chunk
            if self.out.map_due and self.session.ready:
                self.out.publish_map(self.session, self.session.stamps_ns[-1])
            self.lock.release()
        if self.cfg.tf_period_s > 0:
            self.out.republish_tf(self.get_clock().now().nanoseconds)

    def _save(self, request, response):
        path = self.cfg.map_save_path
        with self.lock:
            if not path or not self.session.ready:
                response.message = 'no map.save_path' if not path else 'no chunk processed yet'
                return response
            frames = {'map': self.cfg.map_frame, 'camera': self.frames.camera_frame,
                      'base': self.cfg.base_frame or self.frames.camera_frame}
            try:
                self.session.save(path, frames)
                response.success, response.message = True, f'saved to {path}'
            except Exception as err:  # disk full, permissions: report, keep running
                response.message = f'save failed ({type(err).__name__}: {err})'
        return response

    def _reset(self, request, response):
        with self.wake, self.lock:
            self.queue.clear()
            self.session.reset()
            self.out.clear()
            self.out.publish_status(self.session, 'reset', 0, sum(self.drops.values()))
        response.success, response.message = True, 'reset: a new map starts with the next frame'
        return response

    def _summary(self, state: str | None = None):
        """The session's Summary (call with self.lock held)."""
        state = state or ('tracking' if self.session.ready else 'waiting')
        return out.summarize(self.session, state,
                             self.out.last_tf[0] if self.out.last_tf else '',
                             sum(self.drops.values()))

    def _publish_diagnostics(self) -> None:
        if self.lock.acquire(blocking=False):
            summary = self._last_summary = self._summary()
            self.lock.release()
        else:  # the worker is inside a chunk: report the last numbers, never go silent
            summary = replace(self._last_summary, state='processing_chunk',
                              frames_dropped=sum(self.drops.values()))
        now = self.get_clock().now().nanoseconds
        self.diag_pub.publish(out.diagnostics_msg(summary, now, self.get_name(), self.drops))

    def destroy_node(self):
        with self.wake:
            self.stopping = True
            self.wake.notify()
        self.worker.join(timeout=STOP_WAIT_S)  # the chunk in flight ends, unpublished
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(SlamNode, 'da3_slam', args)


if __name__ == '__main__':
    sys.exit(main())
