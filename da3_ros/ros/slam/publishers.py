"""The SLAM node's publishers: after each chunk TF, Path, keyframes, loop markers, status and
the (throttled) map; the latched prior map; messages built by outputs.py."""
from __future__ import annotations

import time

from geometry_msgs.msg import PoseArray
from nav_msgs.msg import Path
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from da3_ros.msg import SlamStatus
from da3_ros.ros import qos
from da3_ros.ros.slam import outputs as out
from da3_ros.ros.slam.map_store import load_map
from da3_ros.ros.tf_buffer import TfBroadcaster

TOPICS = {'path': Path, 'keyframes': PoseArray, 'map': PointCloud2,
          'loop_closures': MarkerArray, 'status': SlamStatus}


class SlamPublishers:
    """camera_frame: () -> the first camera's frame id (known once frames arrived)."""

    def __init__(self, node, cfg, tf_buffer, camera_frame):
        self.node, self.cfg, self.tf_buffer, self.camera_frame = node, cfg, tf_buffer, camera_frame
        self.tf_out = TfBroadcaster(node)
        self.pubs = {k: node.create_publisher(t, f'~/{k}', qos.reliable(10))
                     for k, t in TOPICS.items()}
        self.frame = cfg.map_frame
        self.last_tf, self.map_due, self.map_sent_at = None, False, -1e18

    def _tf_child(self, session) -> tuple[str, object]:
        """(child frame, T_map_child) for the newest frame, or (reason, None) when the child
        already has a parent that is not ours (never publish a TF another node owns)."""
        T_map_base = session.T_map_base()
        newest = len(T_map_base) - 1
        odom = session.last_odom
        odom = odom[1] if odom and odom[0] == newest else None
        kind, T_map_child = out.map_transform(T_map_base[newest], odom)
        child = self.cfg.odom_frame if kind == 'odom' else (self.cfg.base_frame
                                                             or self.camera_frame())
        owner = self.tf_buffer.parent(child)
        if owner not in (None, self.frame):
            return f'{child} already has parent {owner}', None
        return child, T_map_child

    def publish_chunk(self, session, stamp_ns: int, dropped: int) -> str | None:
        """Everything after a chunk; returns a TF problem to report, or None."""
        child, T = self._tf_child(session)
        if T is not None:
            self.last_tf = (child, T)
            self.tf_out.send([out.tf_msg(self.frame, child, T, stamp_ns)])
        T_map_base = session.T_map_base()
        self.pubs['path'].publish(out.path_msg(session.stamps_ns[:len(T_map_base)], T_map_base,
                                               self.frame))
        self.pubs['keyframes'].publish(out.pose_array_msg(session.keyframes_map(), stamp_ns,
                                                          self.frame))
        self.pubs['loop_closures'].publish(out.loop_markers(
            T_map_base[:, :3, 3], *session.loop_pairs(), stamp_ns, self.frame))
        self.map_due = True
        self.publish_map(session, stamp_ns)
        self.publish_status(session, 'tracking', stamp_ns, dropped)
        return None if T is not None else child

    def publish_status(self, session, state: str, stamp_ns: int, dropped: int) -> None:
        summary = out.summarize(session, state, self.last_tf[0] if self.last_tf else '',
                                dropped)
        self.pubs['status'].publish(out.status_msg(summary, stamp_ns, self.frame))

    def publish_map(self, session, stamp_ns: int) -> None:
        now = time.monotonic()
        if self.map_due and now - self.map_sent_at >= self.cfg.map_period_s:
            points, weight = session.map_points()
            self.pubs['map'].publish(out.map_cloud_msg(
                points, weight, stamp_ns, self.frame, self.cfg.map_voxel_size_m))
            self.map_due, self.map_sent_at = False, now

    def republish_tf(self, now_ns: int) -> None:
        if self.last_tf is not None:
            self.tf_out.send([out.tf_msg(self.frame, *self.last_tf, now_ns)])

    def clear(self) -> None:
        self.last_tf, self.map_due = None, False

    def publish_prior(self, folder: str) -> None:
        """The saved map of map.load_path on latched ~/prior_path and ~/prior_map."""
        loaded = load_map(folder)
        stamp = int(loaded.stamps_ns[-1]) if len(loaded.stamps_ns) else 0
        latched = qos.TF_STATIC_BROADCASTER
        self.prior = [self.node.create_publisher(Path, '~/prior_path', latched),
                      self.node.create_publisher(PointCloud2, '~/prior_map', latched)]
        self.prior[0].publish(out.path_msg(loaded.stamps_ns, loaded.T_map_base, self.frame))
        self.prior[1].publish(out.map_cloud_msg(loaded.points_map, loaded.weight, stamp,
                                                self.frame))
