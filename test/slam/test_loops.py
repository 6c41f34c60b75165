"""Retrieval: threshold, temporal exclusion and NMS, checked against brute-force reasoning."""
import numpy as np

from da3_ros.sim.predictor import place_descriptors
from da3_ros.sim.routes import city_grid
from da3_ros.slam.loops import LoopConfig, LoopDatabase, nms


def test_nms_keeps_best_and_suppresses_neighbours():
    pairs = np.array([[100, 10], [102, 12], [140, 50], [101, 60]])
    sim = np.array([0.90, 0.95, 0.88, 0.91])
    kept = nms(pairs, sim, radius=5)
    assert [(c.query, c.match) for c in kept] == [(102, 12), (101, 60), (140, 50)]


def test_revisits_are_found_and_recent_frames_excluded():
    gt = city_grid(block_m=40.0)
    desc = place_descriptors(gt.T_world_cam, rng=np.random.default_rng(1))
    cfg = LoopConfig(exclude_frames=100, nms_frames=10)
    db = LoopDatabase(cfg)
    ids = np.arange(len(gt))
    found = []
    for lo in range(0, len(gt), 20):                    # stream in blocks, query then add
        block = ids[lo:lo + 20]
        found += db.query(block, desc[block])
        db.add(block, desc[block])
    assert found, 'the revisits of the grid must produce candidates'
    dist = np.array([np.linalg.norm(gt.positions[c.query] - gt.positions[c.match])
                     for c in found])
    assert all(c.query - c.match >= cfg.exclude_frames for c in found)
    assert np.mean(dist < 12.0) > 0.9                   # nearly all are true revisits
    q = np.array([c.query for c in found])
    assert np.all(np.diff(np.sort(q))[np.diff(np.sort(q)) == 0].size == 0)


def test_revisited_places_are_not_added_again():
    """Driving the same small grid twice: with revisits skipped, the second lap adds (almost)
    nothing to the database, and its frames still find their first-lap places."""
    lap = city_grid(block_m=40.0)
    T = np.concatenate([lap.T_world_cam] * 2)
    desc = place_descriptors(T, rng=np.random.default_rng(2))
    cfg = LoopConfig(exclude_frames=100, nms_frames=10)
    db = LoopDatabase(cfg)
    ids = np.arange(len(T))
    sizes, found = {}, []
    for lo in range(0, len(T), 20):
        block = ids[lo:lo + 20]
        found += db.query(block, desc[block])
        fresh = ~db.revisits(block, desc[block])
        db.add(block[fresh], desc[block[fresh]])
        sizes[block[-1] + 1] = len(db.frame_ids)
    one_lap = sizes[min(k for k in sizes if k >= len(lap))]
    assert one_lap < len(lap)                            # the grid's own revisits were skipped
    assert sizes[len(T)] <= 1.05 * one_lap               # the second lap adds < 5 %
    second = [c for c in found if c.query >= len(lap)]
    dist = [np.linalg.norm(T[c.query, :3, 3] - T[c.match, :3, 3]) for c in second]
    assert len(second) > 20 and np.mean(np.array(dist) < 12.0) > 0.9
    assert db.contains(db.frame_ids).all()
    assert not db.contains(np.setdiff1d(ids, db.frame_ids)).any()
