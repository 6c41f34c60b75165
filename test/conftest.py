"""Fixtures shared by the whole test tree (pytest finds them here for every folder).

Helpers that are plain modules rather than fixtures live beside this file (official_nets.py,
random_weights.py, shared_data.py, nav_scene.py, node_process.py, process_cli.py); setup.cfg
puts test/ on the import path. Imports sit inside the fixtures, so a folder's tests load only
what they use.
"""
from __future__ import annotations

import numpy as np
import pytest

# -- model: the official network and ours with the same random weights -----------------------


@pytest.fixture(scope='module')
def small_pair():
    """(official, ours) DA3-SMALL with the same seeded random weights."""
    from official_nets import build_pair
    from random_weights import randomize_

    official, ours = build_pair('da3-small')
    randomize_(official, seed=0)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours


# -- nodes: a checkpoint folder in the official format ---------------------------------------


@pytest.fixture(scope='session')
def da3_small_dir(tmp_path_factory):
    """config.json + model.safetensors of DA3-SMALL with seeded random weights (CPU tests)."""
    import torch

    from da3_ros.model import build
    from da3_ros.model.checkpoint import save

    folder = tmp_path_factory.mktemp('da3_small')
    torch.manual_seed(0)
    save(build('da3-small'), folder)
    return str(folder)


# -- points: a small pinhole scene (test/pinhole_scene.py) ---------------------------------


@pytest.fixture
def pinhole():
    """(depth, rgb, confidence, sky) of pinhole_scene.make_scene on a fixed seed."""
    from pinhole_scene import make_scene

    return make_scene(np.random.default_rng(1234))


# -- SLAM: seeded randomness and a small, fast city scenario ---------------------------------


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope='session')
def small_city():
    """The city grid at 40 m blocks: ~730 m, revisits after ~480 m."""
    from da3_ros.sim.routes import city_grid

    return city_grid(block_m=40.0)


def _small_config(**changes):
    """SlamConfig with chunks of 40 / overlap 20 and loop settings scaled to the small city."""
    from da3_ros.slam.chunking import ChunkConfig
    from da3_ros.slam.loops import LoopConfig
    from da3_ros.slam.map import MapConfig
    from da3_ros.slam.system import SlamConfig

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
    from da3_ros.sim.predictor import PROFILES, FalseLoopInjector, SimCamera, SimulatedPredictor
    from da3_ros.slam.system import SlamSystem

    def run(gt, profile, seed, loops=True, false_loops=(), rig=None):
        sim = SimulatedPredictor(gt, PROFILES[profile], seed, rig=rig,
                                 camera=SimCamera(hw=(12, 40)), false_loops=false_loops)
        hook = FalseLoopInjector(list(false_loops)) if false_loops else None
        slam = SlamSystem(sim, _small_config(loops_enabled=loops), rig=rig, candidate_hook=hook)
        for frame in sim.frames():
            slam.add_frame(frame)
        slam.finish()
        return slam
    return run
