"""Grouping a frame stream into chunks of C frames that overlap by O frames.

Chunk i covers frames [i * step, i * step + C) with step = C - O; at the end of the stream
one shorter chunk takes the remaining frames plus the O frames shared with its predecessor.
Frame ownership (whose pose is reported for a frame): the first half of an
overlap stays with the older chunk, the second half goes to the newer one, so the pose
switches in the middle of the overlap rather than at its edge.
"""
from __future__ import annotations

from dataclasses import dataclass

from da3_ros.errors import ConfigError


@dataclass(frozen=True)
class ChunkConfig:
    size: int = 120      # frames per chunk (C)
    overlap: int = 60    # frames shared with the previous chunk (O)

    def __post_init__(self):
        if self.size < 2:
            raise ConfigError(f'chunk size must be >= 2, got {self.size}')
        if not 0 < self.overlap < self.size:
            raise ConfigError(f'overlap must be in (0, {self.size}), got {self.overlap}')

    @property
    def step(self) -> int:
        return self.size - self.overlap


@dataclass(frozen=True)
class ChunkWindow:
    """Frames [start, end) of chunk `index`; `shared` of them are shared with chunk index-1."""

    index: int
    start: int
    end: int
    shared: int

    @property
    def own_start(self) -> int:
        """First frame this chunk owns: the middle of its overlap with the previous chunk."""
        return self.start + (self.shared + 1) // 2 if self.index > 0 else self.start


def plan_chunks(num_frames: int, cfg: ChunkConfig) -> list[ChunkWindow]:
    """All windows for a stream of `num_frames` frames, in order (offline view)."""
    chunker, windows = Chunker(cfg), []
    for _ in range(num_frames):
        window = chunker.push()
        if window is not None:
            windows.append(window)
    tail = chunker.flush()
    return windows + ([tail] if tail is not None else [])


class Chunker:
    """Streaming chunk boundaries: push() once per frame; a window is returned when ready."""

    def __init__(self, cfg: ChunkConfig):
        self.cfg = cfg
        self.num_frames = 0
        self.last: ChunkWindow | None = None

    def push(self) -> ChunkWindow | None:
        """Register one more frame; return the chunk that just became complete, if any."""
        self.num_frames += 1
        if self.last is None:
            if self.num_frames == self.cfg.size:
                return self._emit(0, 0)
            return None
        if self.num_frames - self.last.end == self.cfg.step:
            return self._emit(self.last.end - self.cfg.overlap, self.cfg.overlap)
        return None

    def flush(self) -> ChunkWindow | None:
        """End of stream: a last, shorter chunk with the frames not covered yet (or None)."""
        if self.last is None:
            return self._emit(0, 0) if self.num_frames >= 2 else None
        if self.num_frames == self.last.end:
            return None
        return self._emit(self.last.end - self.cfg.overlap, self.cfg.overlap)

    def _emit(self, start: int, shared: int) -> ChunkWindow:
        index = 0 if self.last is None else self.last.index + 1
        self.last = ChunkWindow(index, start, min(start + self.cfg.size, self.num_frames),
                                shared)
        return self.last
