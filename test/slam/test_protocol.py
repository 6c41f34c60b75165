"""The adapter that turns an engine Predictor into a chunk predictor for a rig."""
import numpy as np

from da3_ros.engine.prediction import Prediction, ViewGeometry
from da3_ros.slam.descriptors import pool_global_descriptor
from da3_ros.slam.protocol import Frame, PredictorChunkAdapter


class RecordingPredictor:
    def __init__(self):
        self.calls = []

    def predict(self, images, intrinsics=None, extrinsics=None):
        self.calls.append((images, intrinsics))
        S = len(images)
        view = ViewGeometry((4, 6), (4, 6), (1.0, 1.0), (0.0, 0.0))
        return Prediction(np.ones((S, 4, 6), np.float32), None, np.tile(np.eye(4), (S, 1, 1)),
                          np.tile(np.eye(3), (S, 1, 1)), (view,) * S)


def test_rig_frames_become_frame_major_views_with_repeated_intrinsics():
    images = [[np.full((4, 6, 3), 10 * f + c, np.uint8) for c in range(2)] for f in range(3)]
    frames = [Frame(f, 0.1 * f, tuple(images[f])) for f in range(3)]
    K_rig = np.stack([np.eye(3) * 1, np.eye(3) * 2])
    predictor = RecordingPredictor()

    def describe(imgs):                         # stands in for pooled backbone tokens
        return pool_global_descriptor(np.stack([i.reshape(-1, 3) for i in imgs]).astype(float))
    out = PredictorChunkAdapter(predictor, describe, K_rig).predict_chunk(frames)
    sent, K = predictor.calls[0]
    assert [int(i[0, 0, 0]) for i in sent] == [0, 1, 10, 11, 20, 21]
    np.testing.assert_array_equal(K, np.concatenate([K_rig] * 3))
    assert out.prediction.num_views == 6 and out.descriptors.shape == (6, 3)
