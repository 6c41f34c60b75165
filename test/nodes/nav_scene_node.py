"""The depth node as a real process on a rendered scene, for test_depth_node_nav.py:

    python test/nodes/nav_scene_node.py --ros-args --params-file <file>

Same node, same main() as da3_ros/nodes/depth_node.py (run_node(DepthNode)); only the
predictor differs: ScenePredictor stands in for a DA3METRIC network and returns, for each
image, the metric z-depth that test/nav_scene.py renders of SCENE_BOXES (ground z = 0, boxes,
a wall) through the K the node passes (the image's CameraInfo) from the camera pose
T_BASE_CAM, in the Prediction format of a metric model: depth at the input resolution (= the
network's: scale 1, no crop), no confidence, no poses, no sky; inf above the horizon (no
surface there: the node drops it as invalid depth). The scene is importable by the test.
"""
import math
import sys
from pathlib import Path

import numpy as np
import torch

from da3_ros.engine.prediction import Prediction, ViewGeometry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # test/: nav_scene
from nav_scene import camera_pose, intrinsics, render_depth  # noqa: E402

H, W = 480, 640
K = intrinsics(400.0, W, H)                       # 77 deg wide
CAMERA_FRAME = 'camera_optical'
# base_link -> camera_optical: 0.6 m up, 0.2 m ahead, yawed 10 deg left, pitched 15 deg down
T_BASE_CAM = camera_pose(0.2, 0.05, 0.6, math.radians(10), math.radians(15))
# [x0 y0 z0 x1 y1 z1] in base_link; faces off the 5 cm voxel grid (no float ties at a face)
BOX_A = [2.02, -0.93, 0.0, 2.52, -0.42, 0.43]     # a box to the right
BOX_B = [3.03, 0.52, 0.0, 3.62, 1.12, 0.83]       # a box to the left, in front of the wall
WALL = [5.03, 1.53, 0.0, 5.23, 3.52, 1.23]        # partly beyond range_max (6 m) at its end
CURB = [1.52, 0.02, 0.0, 1.82, 0.32, 0.06]        # lower than nav.min_height_m: ground band
FAR = [7.02, -2.03, 0.0, 7.52, -1.02, 1.03]       # beyond range_max: free
SCENE_BOXES = np.array([BOX_A, BOX_B, WALL, CURB, FAR])


class SceneBackend:
    """What DepthNode reads of a backend (engine/backend.py)."""

    model_name = 'da3metric-large'
    is_anyview = False
    supports_cameras = False
    device = torch.device('cpu')
    precision = 'fp32'


class ScenePredictor:
    """Predictor.predict's signature and result, the network replaced by the renderer."""

    backend = SceneBackend()

    def predict(self, images, intrinsics=None, extrinsics=None) -> Prediction:
        if intrinsics is None:
            raise ValueError('the scene needs K (metric_mode metric_model)')
        Ks = np.asarray(intrinsics, np.float64)
        depth, views = [], []
        for image, K_view in zip(images, Ks, strict=True):
            h, w = image.shape[:2]
            depth.append(render_depth(T_BASE_CAM, K_view, h, w, SCENE_BOXES))
            views.append(ViewGeometry((h, w), (h, w), (1.0, 1.0), (0.0, 0.0)))
        return Prediction(np.stack(depth), None, None, Ks, tuple(views), is_metric=True,
                          depth_scale=np.ones(len(views)))


if __name__ == '__main__':
    from da3_ros.nodes.depth_node import DepthNode
    from da3_ros.ros.node_main import run_node

    sys.exit(run_node(lambda: DepthNode(predictor=ScenePredictor()), 'da3_depth'))
