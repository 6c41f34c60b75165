"""Chunk windows against their closed-form rule."""
import math

import pytest

from da3_ros.errors import ConfigError
from da3_ros.slam.chunking import ChunkConfig, plan_chunks


@pytest.mark.parametrize('N,C,overlap', [(1000, 120, 60), (121, 120, 60), (100, 120, 60),
                                   (4705, 120, 60), (57, 10, 3), (10, 10, 3)])
def test_windows_follow_the_reference_rule(N, C, overlap):
    windows = plan_chunks(N, ChunkConfig(C, overlap))
    step = C - overlap
    n = 1 if N <= C else math.ceil((N - overlap) / step)
    assert len(windows) == n
    for i, w in enumerate(windows):
        assert (w.index, w.start, w.end) == (i, i * step, min(i * step + C, N))
        assert w.shared == (overlap if i else 0)


def test_ownership_covers_every_frame_once():
    windows = plan_chunks(1000, ChunkConfig(120, 60))
    pairs = zip(windows[:-1], windows[1:], strict=True)
    owned = [range(w.own_start, nxt.own_start) for w, nxt in pairs]
    owned.append(range(windows[-1].own_start, windows[-1].end))
    frames = [f for r in owned for f in r]
    assert frames == list(range(1000))


def test_invalid_overlap_is_rejected():
    with pytest.raises(ConfigError, match='overlap'):
        ChunkConfig(60, 60)
