"""`da3-ros process --slam`: the SLAM node's session driven by an offline source.

Every camera set becomes one SLAM frame (camera 0 is the tracked camera); the SLAM runs its own
network call per chunk of frames (ros/slam/inputs.NetworkChunkPredictor), so it needs only the
raw images of a SetResult, not the per-set prediction. The configuration is the slam node's
(ros/slam/params.parse_slam_config with its defaults), so offline and live runs agree.

Frames: the tracked base frame is the root of camera 0's frame in the input's /tf_static tree
(e.g. `imu0` for EuRoC's cam0, `LIDAR` for the dgp cameras), or camera 0's own frame when it has
no static parent; so `map -> base` plus the copied /tf_static is one valid TF tree. The map frame
is that base frame at the first frame (as the node). No odometry is used offline.

Outputs, written at close(success=True), after the last (shorter) chunk:
- the map folder of the slam node's ~/save_map (ros/slam/session.SlamSession.write): map.ply,
  trajectory.tum / trajectory.kitti (rig camera 0 in the SLAM's world), metadata.json,
  ros.json (frames, T_map_world, stamps in ns), trajectory_map.tum (base in the map frame);
  the slam node can load it with map.load_path;
- with a bag: /tf map -> base at every frame's stamp, /da3_slam/path (the whole optimised
  trajectory, stamped with the last frame) and /da3_slam/map (the voxel map as PointCloud2),
  as the slam node names them. They are appended after the per-set messages, with log time =
  their header stamp; rosbags, mcap and `ros2 bag play` read them back in time order.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message
from tf2_msgs.msg import TFMessage

from da3_ros.errors import InputError
from da3_ros.offline.rig_frame import CameraSource, RawMessage, SetResult
from da3_ros.ros.slam import outputs as out
from da3_ros.ros.slam.inputs import system_factory
from da3_ros.ros.slam.params import parse_slam_config
from da3_ros.ros.slam.session import FrameInput, SlamSession
from da3_ros.ros.tf_buffer import TfBuffer

log = logging.getLogger(__name__)

NODE_NAMESPACE = '/da3_slam'    # the slam node's private topics (~/path, ~/map)


def static_base(passthrough: tuple[RawMessage, ...], camera_frame: str) -> tuple[str, np.ndarray]:
    """(base frame, (4, 4) T_cam_base): the root of camera_frame in the /tf_static messages,
    or (camera_frame, identity) when it has no static parent."""
    tree = TfBuffer()
    for raw in passthrough:
        if raw.topic == '/tf_static' and raw.msgtype == 'tf2_msgs/msg/TFMessage':
            tree.ingest(deserialize_message(raw.data, TFMessage), static=True)
    base = camera_frame
    while tree.parent(base) is not None:
        base = tree.parent(base)
    return base, (np.eye(4) if base == camera_frame else tree.lookup(camera_frame, base))


class SlamStage:
    """SetConsumer: feeds each set's images to a SlamSession; writes the results at close.

    Close it before the BagWriter it writes into (make_consumers lists it first).
    """

    def __init__(self, folder: Path, predictor, cameras: tuple[CameraSource, ...],
                 passthrough: tuple[RawMessage, ...], chunk_size: int, chunk_overlap: int,
                 use_camera_info: bool = False, bag=None):
        """folder: the map folder to write (created at close); predictor: engine Predictor
        (return_descriptors=True gives loop retrieval); chunk_size / chunk_overlap: frames,
        as the node's chunk.size / chunk.overlap; use_camera_info: give the sets' CameraInfo K
        to the network; bag: a BagWriter or None. Every other setting is the slam node's
        default (map frame 'map', loops on)."""
        self.cfg = parse_slam_config({
            'cameras': [c.namespace for c in cameras], 'chunk.size': chunk_size,
            'chunk.overlap': chunk_overlap, 'frames.odom': ''})
        self.session = SlamSession(system_factory(self.cfg, predictor))
        self.folder, self.passthrough, self.bag = Path(folder), passthrough, bag
        self.use_camera_info = use_camera_info
        self.frames: dict[str, str] | None = None
        self.T_cam_base = np.eye(4)

    def consume(self, result: SetResult) -> None:
        frame = result.frame
        if self.frames is None:
            camera = frame.inputs[0].header.frame_id
            base, self.T_cam_base = static_base(self.passthrough, camera)
            self.frames = {'map': self.cfg.map_frame, 'camera': camera, 'base': base}
            log.info('SLAM: tracking %s (camera %s), TF %s -> %s', base, camera,
                     self.frames['map'], base)
        K = None
        if self.use_camera_info:
            K = frame.intrinsics()
            if K is None:
                raise InputError(f'set {result.index} (stamp {frame.stamp_ns} ns): a camera has '
                                 'no valid CameraInfo, but the CameraInfo intrinsics were asked '
                                 'for')
        self.session.add(FrameInput(frame.stamp_ns, tuple(c.rgb for c in frame.inputs),
                                    self.T_cam_base, None, K))

    def close(self, success: bool) -> None:
        if not success:
            return
        log.info('SLAM: last chunk, then writing the map folder')
        self.session.finish()
        if not self.session.ready:
            raise InputError(f'SLAM needs at least 2 camera sets, got '
                             f'{self.session.num_frames}')
        self.session.write(self.folder, self.frames)
        stats = self.session.slam.stats
        log.info('SLAM: %d frames, %d chunks, %d loops accepted, %d map points',
                 self.session.num_frames, stats.chunks, len(stats.accepted_pairs),
                 len(self.session.slam.map))
        if self.bag is not None:
            self._write_bag()

    def _write_bag(self) -> None:
        map_frame, base = self.frames['map'], self.frames['base']
        T_map_base = self.session.T_map_base()
        stamps = self.session.stamps_ns[:len(T_map_base)]
        for stamp_ns, T in zip(stamps, T_map_base, strict=True):
            self.bag.write('/tf', 'tf2_msgs/msg/TFMessage',
                           TFMessage(transforms=[out.tf_msg(map_frame, base, T, stamp_ns)]),
                           stamp_ns)
        self.bag.write(f'{NODE_NAMESPACE}/path', 'nav_msgs/msg/Path',
                       out.path_msg(stamps, T_map_base, map_frame), stamps[-1])
        points, weight = self.session.map_points()
        self.bag.write(f'{NODE_NAMESPACE}/map', 'sensor_msgs/msg/PointCloud2',
                       out.map_cloud_msg(points, weight, stamps[-1], map_frame), stamps[-1])
