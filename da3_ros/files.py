"""Atomic file writes: a reader, or a process killed at any moment, sees the old file or the
complete new one, never a partial one.

The data goes to a temporary file in the target's folder, is flushed to disk, and is renamed
onto the target (a rename within one filesystem is atomic on POSIX). The file gets the
permissions of a plain open() (0666 minus the umask), not mkstemp's 0600, so a node running as
another user can read what a command run with sudo wrote. Pure: imports nothing of ROS.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def process_umask() -> int:
    """The process umask (read from /proc where possible: setting it is process-wide)."""
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('Umask:'):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that takes a file name; when the block ends
    without an exception it replaces `path`, else it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~process_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data) -> None:
    """Write bytes (or any buffer) to `path` atomically; TypeError for str."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data)
