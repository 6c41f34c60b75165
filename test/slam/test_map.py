"""Voxel map: merging bounds memory by area, re-anchoring moves points exactly."""
import numpy as np

from da3_ros.geometry.sim3 import Sim3, rotation_from_rotvec
from da3_ros.slam.map import MapConfig, VoxelMap


def test_revisiting_the_same_area_does_not_grow_the_map(rng):
    m = VoxelMap(MapConfig(voxel_m=0.5, min_hits=1))   # merging alone
    poses = [Sim3.identity()] * 20
    wall = rng.uniform([0, 0, 0.2], [20, 5, 0.3], size=(5000, 3))   # inside one voxel layer
    m.insert(wall, np.ones(5000), 0, poses)
    size = len(m)
    for k in range(1, 20):                               # 19 more passes over the same wall
        m.insert(wall + rng.normal(0, 0.02, wall.shape), np.ones(5000), k, poses)
    assert len(m) <= 1.25 * size        # only border voxels hit by the 2 cm noise are new
    assert size <= (20 / 0.5 + 1) * (5 / 0.5 + 1) * 2    # bounded by the wall's voxel count
    np.testing.assert_allclose(m.weight.sum(), 20 * 5000, rtol=1e-5)


def test_reanchor_applies_each_chunks_new_pose(rng):
    m = VoxelMap(MapConfig(voxel_m=0.01))
    a, b = rng.uniform(-5, 5, (300, 3)), rng.uniform(20, 30, (300, 3))
    poses = [Sim3.identity(), Sim3.identity()]
    m.insert(a, np.ones(300), 0, poses)
    m.insert(b, np.ones(300), 1, poses)
    before = m.points_world(poses)
    moved = [Sim3.identity(), Sim3(1.1, rotation_from_rotvec(np.array([[0, 0.3, 0]]))[0],
                                   np.array([1.0, 2.0, 3.0]))]
    m.reanchor(moved)
    after = m.points_world(moved)
    from_b = m.anchor == 1
    # chunk 1's points moved by exactly the new Sim(3); chunk 0's did not move
    expect = np.where(from_b[:, None], moved[1].apply(before), before)
    np.testing.assert_allclose(np.sort(after, 0), np.sort(expect, 0), atol=1e-4)


def test_stray_points_are_pruned_once_stale_and_surfaces_stay(rng):
    """A wall hit by every chunk survives; single outliers are dropped after prune_after
    chunks without a hit, so repeated passes with outliers do not grow the map."""
    cfg = MapConfig(voxel_m=0.5, min_hits=2, prune_after=2)
    m = VoxelMap(cfg)
    poses = [Sim3.identity()] * 30
    wall = rng.uniform([0, 0, 0.2], [20, 5, 0.3], size=(5000, 3))
    sizes = []
    for k in range(30):
        stray = rng.uniform(-200, 200, (50, 3))             # one hit each, far apart
        pts = np.concatenate([wall + rng.normal(0, 0.02, wall.shape), stray])
        m.insert(pts, np.ones(len(pts)), k, poses)
        sizes.append(len(m))
    wall_voxels = len(np.unique(np.floor(wall / 0.5), axis=0))
    # The last prune_after chunks' strays are still young; older ones are gone.
    assert sizes[-1] <= 1.25 * wall_voxels + 2 * 50
    assert sizes[-1] - sizes[10] <= 0.05 * sizes[10]                  # flat, not O(frames)
    world = m.points_world(poses)
    near_wall = (world >= [-0.5, -0.5, -0.5]).all(1) & (world <= [20.5, 5.5, 1.0]).all(1)
    assert near_wall.sum() >= 0.95 * wall_voxels                      # the surface stays
    assert m.hits[near_wall].min() >= 1 and (m.hits[~near_wall] == 1).all()


def test_min_hits_one_keeps_every_point(rng):
    m = VoxelMap(MapConfig(voxel_m=0.01, min_hits=1))
    poses = [Sim3.identity()] * 10
    for k in range(10):
        m.insert(rng.uniform(-50, 50, (100, 3)), np.ones(100), k, poses)
    assert len(m) == 1000 and m.hits.sum() == 1000
