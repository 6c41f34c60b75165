"""Backbone-token pooling for loop retrieval."""
import numpy as np

from da3_ros.slam.descriptors import frame_descriptors, pool_global_descriptor


def test_pooling_is_the_normalised_token_mean(rng):
    tokens = rng.normal(size=(3, 50, 16)).astype(np.float32)
    out = pool_global_descriptor(tokens)
    for s in range(3):                       # independent reference: explicit sums
        total = sum(tokens[s, i].astype(np.float64) for i in range(50))
        np.testing.assert_allclose(out[s], total / np.sqrt((total ** 2).sum()), atol=1e-6)
    perm = rng.permutation(50)
    np.testing.assert_allclose(pool_global_descriptor(tokens[:, perm]), out, atol=1e-6)


def test_same_place_has_cosine_one_and_rig_frames_are_unit(rng):
    tokens = rng.normal(size=(4, 20, 8))
    d = pool_global_descriptor(np.concatenate([tokens, tokens]))
    np.testing.assert_allclose(d[:4] @ d[4:].T, d[:4] @ d[:4].T, atol=1e-6)
    np.testing.assert_allclose(np.diag(d[:4] @ d[4:].T), 1.0, atol=1e-6)
    f = frame_descriptors(d, num_cameras=2)
    assert f.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-6)
