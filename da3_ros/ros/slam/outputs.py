"""SLAM state -> ROS messages: TF (map->odom or map->base), Path, keyframe PoseArray, the global
map as PointCloud2, loop closures as markers, SlamStatus and /diagnostics. Pure functions of
numpy arrays and a SlamSession; only message construction touches ROS types.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseArray, PoseStamped
from nav_msgs.msg import Path
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from da3_ros.geometry.points import Points, voxel_downsample
from da3_ros.geometry.sim3 import invert_se3
from da3_ros.msg import SlamStatus
from da3_ros.ros.pointcloud import points_to_cloud
from da3_ros.ros.tf_buffer import make_transform_stamped, matrix_to_transform, ns_to_stamp


def rigid(T: np.ndarray) -> np.ndarray:
    """(..., 4, 4) with the rotation block projected onto SO(3) (SVD), for messages."""
    out = np.array(T, np.float64)
    U, _, Vt = np.linalg.svd(out[..., :3, :3])
    D = np.ones(U.shape[:-1])
    D[..., -1] = np.sign(np.linalg.det(U @ Vt))
    out[..., :3, :3] = (U * D[..., None, :]) @ Vt
    return out


def map_transform(T_map_base: np.ndarray,
                  T_odom_base: np.ndarray | None) -> tuple[str, np.ndarray]:
    """('odom', T_map_odom = T_map_base T_odom_base^-1) with odometry, else ('base', T_map_base).

    T_map_base, T_odom_base: (4, 4) of the same instant, metres
    """
    if T_odom_base is None:
        return 'base', rigid(T_map_base)
    return 'odom', rigid(T_map_base @ invert_se3(T_odom_base))


def header(stamp_ns: int, frame: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame)


def _pose(T: np.ndarray) -> Pose:
    t = matrix_to_transform(T)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (t.translation.x, t.translation.y,
                                                         t.translation.z)
    pose.orientation = t.rotation
    return pose


def path_msg(stamps_ns, T_map_base: np.ndarray, frame: str) -> Path:
    """Every frame's pose; header stamp = the newest frame's."""
    T = rigid(T_map_base)
    msg = Path(header=header(int(stamps_ns[-1]), frame))
    msg.poses = [PoseStamped(header=header(int(s), frame), pose=_pose(M))
                 for s, M in zip(stamps_ns, T, strict=True)]
    return msg


def pose_array_msg(T_map: np.ndarray, stamp_ns: int, frame: str) -> PoseArray:
    return PoseArray(header=header(stamp_ns, frame), poses=[_pose(M) for M in rigid(T_map)])


def map_cloud_msg(points_map: np.ndarray, weight: np.ndarray, stamp_ns: int, frame: str,
                  voxel_m: float = 0.0):
    """(M, 3) map points and (M,) weights -> PointCloud2 (x, y, z, confidence = weight)."""
    points = Points(points_map.astype(np.float32), None, weight.astype(np.float32))
    if voxel_m > 0:
        points = voxel_downsample(points, voxel_m)
    return points_to_cloud(points, header(stamp_ns, frame))


def loop_markers(positions: np.ndarray, accepted: list, rejected: list, stamp_ns: int,
                 frame: str) -> MarkerArray:
    """LINE_LIST per kind: accepted loops green (ns 'loops_accepted'), rejected red.

    positions: (F, 3) frame positions in the map frame; pairs: (query, match) frame indices
    """
    markers = []
    for marker_id, (name, pairs, rgb) in enumerate(
            (('loops_accepted', accepted, (0.1, 0.9, 0.2)),
             ('loops_rejected', rejected, (0.9, 0.1, 0.1)))):
        m = Marker(header=header(stamp_ns, frame), ns=name, id=marker_id,
                   type=Marker.LINE_LIST, action=Marker.ADD)
        m.pose.orientation.w = 1.0
        m.scale.x = 0.3
        m.color = ColorRGBA(r=rgb[0], g=rgb[1], b=rgb[2], a=1.0)
        m.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
                    for q, k in pairs if max(q, k) < len(positions)
                    for p in (positions[q], positions[k])]
        markers.append(m)
    return MarkerArray(markers=markers)


@dataclass(frozen=True)
class Summary:
    """The numbers of SlamStatus and /diagnostics."""

    state: str
    tf_child_frame: str
    frames: int
    chunks: int
    frames_dropped: int
    loop_candidates: int
    loops_accepted: int
    loops_rejected: int
    loops_removed: int
    fallback_edges: int
    alignment_inlier_ratio: float
    alignment_residual: float
    chunk_scale: float
    map_points: int
    map_bytes: int
    chunk_latency_ms: float
    network_latency_ms: float


def summarize(session, state: str, tf_child: str, dropped: int) -> Summary:
    slam, stats = session.slam, session.slam.stats
    quality = getattr(slam, 'seq_quality', None) or [(np.nan, np.nan, np.nan)]
    estimates = slam.graph.estimates
    return Summary(
        state, tf_child, session.num_frames, stats.chunks, dropped, stats.loop_candidates,
        len(stats.accepted_pairs), stats.loop_candidates - stats.loops_accepted,
        stats.loops_removed, stats.fallback_edges, float(quality[-1][0]),
        float(quality[-1][1]), float(estimates[-1].s) if estimates else 1.0, len(slam.map),
        int(slam.map.nbytes), session.timing.chunk_ms, session.timing.network_ms)


def status_msg(summary: Summary, stamp_ns: int, frame: str) -> SlamStatus:
    msg = SlamStatus(header=header(stamp_ns, frame))
    for name, value in vars(summary).items():
        setattr(msg, name, value)
    return msg


def diagnostics_msg(summary: Summary, stamp_ns: int, node_name: str,
                    drops: dict[str, int]) -> DiagnosticArray:
    """One status 'slam' with every Summary field plus 'drops.<cause>' counts."""
    values = [KeyValue(key=k, value=f'{v:.4g}' if isinstance(v, float) else str(v))
              for k, v in vars(summary).items()]
    values += [KeyValue(key=f'drops.{c}', value=str(n)) for c, n in sorted(drops.items())]
    level = DiagnosticStatus.OK if summary.state != 'waiting' else DiagnosticStatus.WARN
    status = DiagnosticStatus(level=level, name=f'{node_name}: slam', hardware_id=node_name,
                              message=f'{summary.state}: {summary.chunks} chunks, '
                                      f'{summary.loops_accepted} loops', values=values)
    return DiagnosticArray(header=Header(stamp=ns_to_stamp(stamp_ns)), status=[status])


def tf_msg(parent: str, child: str, T: np.ndarray, stamp_ns: int):
    return make_transform_stamped(parent, child, rigid(T), stamp_ns)
