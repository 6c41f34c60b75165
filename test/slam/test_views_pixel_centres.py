"""The SLAM map and the depth node's clouds put the same pixel of the same depth at one 3-D point.

Both back-project at integer pixel centres (u, v) = (column, row), as K in CameraInfo and the
official code define them; the reference here is the pinhole model written out by hand.
"""
import numpy as np

from da3_ros.geometry.points import CloudConfig, depth_to_points
from da3_ros.slam.views import backproject

K = np.array([[210.0, 0.0, 31.7], [0.0, 205.0, 22.3], [0.0, 0.0, 1.0]])


def test_slam_points_equal_depth_node_cloud_and_pinhole():
    rng = np.random.default_rng(3)
    H, W = 48, 64
    depth = rng.uniform(1.0, 30.0, (H, W)).astype(np.float32)
    slam = backproject(depth[None], K[None], np.eye(4)[None])[0]          # (H*W, 3)
    cloud = depth_to_points(depth, K, cfg=CloudConfig(stride=1, voxel_size_m=0.0,
                                                      min_range_m=0.0, max_range_m=1e9))
    np.testing.assert_allclose(cloud.xyz, slam, rtol=1e-6, atol=1e-5)
    v, u = 17, 40
    z = float(depth[v, u])
    pinhole = [(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z]
    np.testing.assert_allclose(slam[v * W + u], pinhole, rtol=1e-6)
