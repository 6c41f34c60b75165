"""Fixtures of the model tests; the builders live in test/official_nets.py (shared)."""
from __future__ import annotations

import pytest

from official_nets import (  # noqa: F401  (re-exported to the tests here)
    PARITY_TOL,
    SHRUNK,
    assert_outputs_match,
    build_pair,
    no_init,
    official_config,
    rel_err,
)
from random_weights import randomize_  # noqa: F401


@pytest.fixture(scope='module')
def small_pair():
    official, ours = build_pair('da3-small')
    randomize_(official, seed=0)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours
