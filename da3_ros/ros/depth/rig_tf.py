"""A calibration-file rig (rig.source: yaml) on /tf_static: rig base frame -> each camera.

With rig.source tf the depth node reads base -> camera from /tf_static; with a calibration file
nothing else publishes those transforms, so a tool that works in the rig's base frame (rviz with
Fixed Frame base_link) could not place the per-camera outputs. The depth node therefore
publishes the calibration the way tf2_ros.StaticTransformBroadcaster does: one TFMessage that
holds every camera's transform, on /tf_static, reliable, transient local, depth 1
(qos.TF_STATIC_BROADCASTER), so late subscribers get it. tf2_ros is not a dependency (it is not
installable here), so this is a plain rclpy publisher with that QoS.

Child frames are the optical frames the node stamps on its outputs, i.e. the header.frame_id
of each camera's messages; the calibration is keyed by camera name (the namespace's last
component). The frames are learnt as CameraInfo and images arrive: the message goes out once
every camera's frame is known, and again if a camera's frame changes.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from geometry_msgs.msg import TransformStamped
from tf2_msgs.msg import TFMessage

from da3_ros.errors import ConfigError
from da3_ros.ros import qos
from da3_ros.ros.depth.rig_calibration import RigCalibration
from da3_ros.ros.tf_buffer import make_transform_stamped


def check_base_frame(calibration: RigCalibration, base_frame: str) -> None:
    """The calibration file's base_frame (if it names one) must be rig.base_frame."""
    if calibration.base_frame and calibration.base_frame != base_frame:
        raise ConfigError(f'the calibration is in {calibration.base_frame!r} but rig.base_frame '
                          f'is {base_frame!r}; set rig.base_frame to {calibration.base_frame!r}')


def rig_static_transforms(calibration: RigCalibration, base_frame: str,
                          frames: Sequence[tuple[str, str]],
                          stamp_ns: int = 0) -> list[TransformStamped]:
    """[(camera name, frame id)] -> base_frame -> frame id transforms, each the camera's
    T_base_camera from the calibration (translation in metres, quaternion x, y, z, w)."""
    calibration.extrinsics([name for name, _ in frames])  # ConfigError for a missing camera
    return [make_transform_stamped(base_frame, frame, calibration.cameras[name].T_base_camera,
                                   stamp_ns) for name, frame in frames]


class RigStaticTf:
    """The node's /tf_static publisher for a calibration-file rig (see the module docstring).

    observe() runs on the executor thread for each CameraInfo and image; it costs a dict
    lookup unless a camera's frame is new.
    """

    def __init__(self, node, calibration: RigCalibration, base_frame: str,
                 names: Sequence[str], now_ns: Callable[[], int]):
        rig_static_transforms(calibration, base_frame, [(n, n) for n in names])  # all known
        self.calibration, self.base_frame, self._now_ns = calibration, base_frame, now_ns
        self.frames: dict[str, str | None] = dict.fromkeys(names)
        self.publisher = node.create_publisher(TFMessage, '/tf_static',
                                               qos.TF_STATIC_BROADCASTER)

    def observe(self, name: str, frame_id: str) -> bool:
        """Note camera `name`'s frame; publish all transforms when every frame is known and
        one is new. Returns whether it published."""
        if not frame_id or self.frames.get(name, frame_id) == frame_id:
            return False
        self.frames[name] = frame_id
        if None in self.frames.values():
            return False
        self.publisher.publish(TFMessage(transforms=rig_static_transforms(
            self.calibration, self.base_frame, list(self.frames.items()), self._now_ns())))
        return True

    def describe(self) -> str:
        return f'{self.base_frame} -> {list(self.frames.values())}'
