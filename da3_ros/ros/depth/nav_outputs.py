"""The depth node's Nav2 outputs: obstacle cloud (`da3/obstacles`, PointCloud2 x y z) and
virtual laser scan (`da3/scan`, sensor_msgs/LaserScan), both in nav.base_frame, from one
set's depth (numpy on the host path, tensors on the device path: the same torch code,
geometry.nav_obstacles). Ranges follow REP-117: +inf = the bearing was seen and is free up to
range_max (Nav2 clears along it with inf_is_valid), NaN = no camera sees that bearing.
"""
from __future__ import annotations

import numpy as np
import torch
from sensor_msgs.msg import LaserScan, PointCloud2
from std_msgs.msg import Header

from da3_ros.geometry.nav_obstacles import NavConfig, ScanGeometry, nav_obstacles
from da3_ros.geometry.points import Points
from da3_ros.ros.image_conversion import copy_header
from da3_ros.ros.pointcloud import points_to_cloud

NAV_OUTPUTS = ('obstacles', 'scan')
TOPICS = {'obstacles': 'obstacles', 'scan': 'scan'}


def scan_message(ranges: np.ndarray, scan: ScanGeometry, cfg: NavConfig, header: Header,
                 scan_time_s: float = 0.0) -> LaserScan:
    """(count,) float32 ranges -> LaserScan (angles counter-clockwise about z from x, as
    REP-103 / REP-117; no intensities)."""
    msg = LaserScan(angle_min=float(scan.angle_min), angle_max=float(scan.angle_max),
                    angle_increment=float(scan.angle_increment), time_increment=0.0,
                    scan_time=float(scan_time_s), range_min=float(cfg.range_min_m),
                    range_max=float(cfg.range_max_m))
    msg.header = copy_header(header)
    msg.ranges = np.asarray(ranges, dtype=np.float32).tolist()
    return msg


def _tensor(array, device) -> torch.Tensor | None:
    if array is None:
        return None
    if isinstance(array, torch.Tensor):
        return array if device is None else array.to(device)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device or 'cpu')


def nav_messages(depth, K, T_base_cams: np.ndarray, cfg: NavConfig, header: Header,
                 publish: frozenset[str], confidence=None, sky=None
                 ) -> tuple[PointCloud2 | None, LaserScan | None]:
    """(obstacle cloud or None, scan or None) for the outputs in `publish`.

    depth: (S, H, W) metres, numpy or a tensor on any device (the computation runs there);
    K: (S, 3, 3) pixels of depth; T_base_cams: (S, 4, 4) camera -> base frame;
    confidence, sky: (S, H, W) or None; header: stamp and frame_id (= the base frame)
    """
    device = depth.device if isinstance(depth, torch.Tensor) else None
    result = nav_obstacles(_tensor(depth, device), _tensor(np.asarray(K, np.float64), device),
                           _tensor(np.asarray(T_base_cams, np.float64), device), cfg,
                           _tensor(confidence, device), _tensor(sky, device),
                           want_cloud='obstacles' in publish)
    cloud = scan = None
    if 'obstacles' in publish:
        cloud = points_to_cloud(Points(result.obstacles.cpu().numpy()), header)
    if 'scan' in publish:
        scan = scan_message(result.ranges.cpu().numpy(), result.scan, cfg, header)
    return cloud, scan
