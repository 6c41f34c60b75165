"""The depth node's publishers, one per output it publishes, and one set's messages out.

An output switched on while the node runs (`ros2 param set publish.<output> true`) gets its
publisher then; one switched off keeps its publisher, idle, since a publisher cannot be
destroyed safely while the publish thread may be using it. Topics: per camera
<camera output_prefix>/<TOPIC_NAMES>, for the rig <output_namespace>/{points, rig_depth,
obstacles, scan}, and /tf.
"""
from __future__ import annotations

from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2

from da3_ros.msg import RigDepth
from da3_ros.ros.depth.nav_outputs import NAV_OUTPUTS
from da3_ros.ros.depth.outputs import RigOutputs
from da3_ros.ros.depth.params import DepthConfig
from da3_ros.ros.tf_buffer import TfBroadcaster

# per-camera output -> message type, and its topic name under the camera's output prefix
PER_CAMERA = {'depth': Image, 'confidence': Image, 'camera_info': CameraInfo,
              'cloud': PointCloud2, 'colorized_depth': Image}
TOPIC_NAMES = {'depth': 'depth', 'confidence': 'confidence', 'camera_info': 'camera_info',
               'cloud': 'points', 'colorized_depth': 'depth_colorized'}
# rig output -> (message type, topic name under output_namespace)
RIG_OUTPUTS = {'fused_cloud': (PointCloud2, 'points'), 'rig_depth': (RigDepth, 'rig_depth'),
               'obstacles': (PointCloud2, 'obstacles'), 'scan': (LaserScan, 'scan')}
# the order a set's rig messages go out in, after the cameras' ('tf': /tf)
RIG_ORDER = ('fused_cloud', 'tf', 'rig_depth', *NAV_OUTPUTS)


class DepthPublishers:
    """node: the rclpy Node; qos: the outputs' QoS profile. The publish thread reads the
    publisher dicts while the executor thread may add to them: each is replaced whole."""

    def __init__(self, node, cfg: DepthConfig, qos):
        self.node, self.cfg, self.qos = node, cfg, qos
        self.cameras: list[dict] = [{} for _ in cfg.cameras]  # per camera: output -> publisher
        self.rig: dict = {}      # rig output (RIG_OUTPUTS) -> publisher
        self.tf_out: TfBroadcaster | None = None
        self.add(cfg.publish)

    def add(self, publish: frozenset[str]) -> None:
        """Publishers for the outputs in `publish` that have none yet."""
        cameras = [dict(pubs) for pubs in self.cameras]
        for cam, pubs in zip(self.cfg.cameras, cameras, strict=True):
            for out in PER_CAMERA.keys() & publish - pubs.keys():
                pubs[out] = self.node.create_publisher(
                    PER_CAMERA[out], f'{cam.output_prefix}/{TOPIC_NAMES[out]}', self.qos)
        rig = dict(self.rig)
        for out in RIG_OUTPUTS.keys() & publish - rig.keys():
            kind, topic = RIG_OUTPUTS[out]
            rig[out] = self.node.create_publisher(
                kind, f'{self.cfg.output_namespace}/{topic}', self.qos)
        if 'tf' in publish and self.tf_out is None:
            self.tf_out = TfBroadcaster(self.node)
        self.rig, self.cameras = rig, cameras  # one assignment each: old or new is seen

    def publish(self, out: RigOutputs, publish: frozenset[str]) -> None:
        """One set's messages, for the outputs in `publish` (an output switched off while the
        set was built is not sent)."""
        for pubs, cam_out in zip(self.cameras, out.cameras, strict=True):
            for name, pub in pubs.items():
                if name in publish and getattr(cam_out, name) is not None:
                    pub.publish(getattr(cam_out, name))
        for name in RIG_ORDER:
            if name not in publish:
                continue
            if name == 'tf':
                if self.tf_out is not None and out.transforms:
                    self.tf_out.send(out.transforms)
            elif (pub := self.rig.get(name)) is not None and getattr(out, name) is not None:
                pub.publish(getattr(out, name))
