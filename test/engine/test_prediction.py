"""Prediction bookkeeping: intrinsics at the network resolution map back to the input image."""
from __future__ import annotations

import numpy as np
import pytest

from da3_ros.engine.prediction import Prediction, ViewGeometry
from da3_ros.errors import InputError


def test_intrinsics_map_back_to_input_pixels():
    """A 3-D point projects to the same place whether we project with the input-image K and
    then resize/crop the pixel, or project with the network K directly."""
    sx, sy, ox, oy = 504 / 1280, 280 / 720, 3.0, 1.5
    geometry = ViewGeometry((720, 1280), (280, 504), (sx, sy), (ox, oy))
    K_net = np.array([[400.0 * sx, 0, 640.0 * sx - ox], [0, 410.0 * sy, 360.0 * sy - oy],
                      [0, 0, 1]])
    K_in = geometry.intrinsics_to_input(K_net)
    point = np.array([0.4, -0.3, 2.5])
    u_in, v_in, w = K_in @ point
    u_net, v_net, w_net = K_net @ point
    assert np.allclose([u_in / w * sx - ox, v_in / w * sy - oy], [u_net / w_net, v_net / w_net])
    assert np.allclose(K_in, [[400, 0, 640], [0, 410, 360], [0, 0, 1]])


def test_prediction_checks_shapes():
    views = (ViewGeometry((10, 10), (14, 14), (1.4, 1.4), (0, 0)),) * 2
    with pytest.raises(InputError, match='depth must be'):
        Prediction(np.zeros((3, 14, 14)), None, np.eye(4)[None].repeat(2, 0),
                   np.eye(3)[None].repeat(2, 0), views)
    pred = Prediction(np.zeros((2, 14, 14), np.float32), None, np.eye(4)[None].repeat(2, 0),
                      np.eye(3)[None].repeat(2, 0), views)
    assert pred.num_views == 2
    assert np.allclose(pred.K_input(1), np.diag([1 / 1.4, 1 / 1.4, 1]))
