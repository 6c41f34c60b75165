"""Voxel map: merging bounds memory by area, re-anchoring moves points exactly."""
import numpy as np

from da3_ros.geometry.sim3 import Sim3, rotation_from_rotvec
from da3_ros.slam.map import MapConfig, VoxelMap


def test_revisiting_the_same_area_does_not_grow_the_map(rng):
    m = VoxelMap(MapConfig(voxel_m=0.5))
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
