"""Fixtures of the depth-node tests: a random-weight DA3-SMALL checkpoint folder."""
from __future__ import annotations

import pytest


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
