"""Frame store: poses for every frame, depth samples only until released, rows reused."""
import numpy as np
import pytest

from da3_ros.engine.prediction import Prediction, ViewGeometry
from da3_ros.geometry.sim3 import Sim3
from da3_ros.slam.frame_store import FrameStore
from da3_ros.slam.views import ChunkViews


def _views(ids: np.ndarray, rng) -> ChunkViews:
    """A mono chunk of frames `ids`, 4x5 px views with random depth / conf / poses."""
    S, H, W = len(ids), 4, 5
    T = np.tile(np.eye(4), (S, 1, 1))
    T[:, :3, 3] = rng.normal(size=(S, 3))
    K = np.tile(np.array([[5.0, 0, 2.5], [0, 5.0, 2.0], [0, 0, 1]]), (S, 1, 1))
    view = ViewGeometry((H, W), (H, W), (1.0, 1.0), (0.0, 0.0))
    pred = Prediction(rng.uniform(1, 9, (S, H, W)).astype(np.float32),
                      rng.uniform(0, 2, (S, H, W)).astype(np.float32), T, K, (view,) * S,
                      None, True, 1.0)
    return ChunkViews.from_prediction(pred, ids, 1)


def test_samples_are_kept_until_released_and_rows_are_reused():
    rng = np.random.default_rng(0)
    pixels = np.array([0, 7, 19])
    store = FrameStore(1, pixels)
    held = []
    for k in range(20):                                  # 20 chunks of 30 frames
        ids = np.arange(30 * k, 30 * k + 30)
        views = _views(ids, rng)
        store.assign(k, views, ids, ids / 10.0)
        depth, conf = store.samples(ids[[0, 29]])
        np.testing.assert_array_equal(depth[:, 0], views.depth.reshape(30, -1)[[0, 29]][:, pixels]
                                      .astype(np.float16))
        np.testing.assert_array_equal(conf[:, 0], views.conf.reshape(30, -1)[[0, 29]][:, pixels]
                                      .astype(np.float16))
        keep = ids[::10]                                 # 3 frames per chunk stay
        store.release_samples(np.setdiff1d(ids, keep))
        held.append(keep)
    assert store.size == 600
    assert store.sample_count == 60
    assert len(store.depth) <= 256                       # released rows were reused
    assert store.has_samples(np.concatenate(held)).all()
    assert not store.has_samples(np.setdiff1d(np.arange(600), np.concatenate(held))).any()
    with pytest.raises(KeyError):
        store.samples(np.array([1]))
    # Poses stay for every frame: the trajectory is complete.
    T = store.world_poses([Sim3.identity()] * 20)
    assert T.shape == (600, 4, 4) and np.isfinite(T).all()
