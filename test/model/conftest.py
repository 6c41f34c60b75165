"""Fixtures of the model tests; the builders live in test/official_nets.py (shared)."""
from __future__ import annotations

import pytest

from official_nets import build_pair
from random_weights import randomize_


@pytest.fixture(scope='module')
def small_pair():
    official, ours = build_pair('da3-small')
    randomize_(official, seed=0)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours
