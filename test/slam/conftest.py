"""Shared fixtures of the SLAM tests: seeded randomness and a small, fast city scenario."""
from __future__ import annotations

import numpy as np
import pytest

from da3_ros.sim.predictor import PROFILES, FalseLoopInjector, SimCamera, SimulatedPredictor
from da3_ros.sim.routes import city_grid
from da3_ros.slam.chunking import ChunkConfig
from da3_ros.slam.loops import LoopConfig
from da3_ros.slam.map import MapConfig
from da3_ros.slam.system import SlamConfig, SlamSystem


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope='session')
def small_city():
    """The city grid at 40 m blocks: ~730 m, revisits after ~480 m."""
    return city_grid(block_m=40.0)


SMALL_CAMERA = SimCamera(hw=(12, 40))


def _small_config(**changes) -> SlamConfig:
    """Chunks of 40 / overlap 20 and loop settings scaled to the small city."""
    base = dict(chunk=ChunkConfig(40, 20),
                loop=LoopConfig(exclude_frames=100, window=10, nms_frames=10),
                map=MapConfig(voxel_m=1.0, points_per_frame=64))
    base.update(changes)
    return SlamConfig(**base)


@pytest.fixture(scope='session')
def small_config():
    return _small_config


@pytest.fixture(scope='session')
def run_sim():
    """run_sim(gt, profile, seed, loops=True, false_loops=(), rig=None) -> finished SlamSystem
    with the planned false pairs injected after NMS."""
    def run(gt, profile, seed, loops=True, false_loops=(), rig=None):
        sim = SimulatedPredictor(gt, PROFILES[profile], seed, rig=rig, camera=SMALL_CAMERA,
                                 false_loops=false_loops)
        hook = FalseLoopInjector(list(false_loops)) if false_loops else None
        slam = SlamSystem(sim, _small_config(loops_enabled=loops), rig=rig, candidate_hook=hook)
        for frame in sim.frames():
            slam.add_frame(frame)
        slam.finish()
        return slam
    return run
