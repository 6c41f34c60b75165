"""Where the project's shared sample data lives, for tests and helper processes.

Order: $DA3_ROS_SHARED_DATA, then `../shared/data` beside the repository (the development
layout), then /work/shared/data (the CI machines' layout, where a clean clone sits elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """The shared data folder; the first candidate that exists (else the last one)."""
    candidates = [Path(p) for p in (os.environ.get('DA3_ROS_SHARED_DATA'),) if p]
    candidates += [_REPO.parent / 'shared' / 'data', Path('/work/shared/data')]
    return next((c for c in candidates if c.is_dir()), candidates[-1])


DATA = shared_data()
