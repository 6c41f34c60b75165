"""Outputs appear only when a run succeeds: each is written inside a hidden holder folder
beside its final path and moved into place by commit(); abort() (any failure) deletes them.

The temporary path keeps the final file name (rosbags names a bag's storage file after its
folder, and metadata.yaml records that name) and lies in the same folder as the final path, so
the move is a rename on one file system. Outputs that already exist are refused at stage()
time unless overwrite is set; then they are replaced only at commit().
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from da3_ros.errors import ConfigError


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class Staging:
    """Temporary paths for final outputs; use as a context manager (abort on exception)."""

    def __init__(self, overwrite: bool = False):
        self.overwrite = overwrite
        self._staged: list[tuple[Path, Path]] = []  # (temporary, final)

    def stage(self, final: str | Path) -> Path:
        """A temporary path (not yet created) that commit() will move to `final`."""
        final = Path(final)
        if not final.parent.is_dir():
            raise ConfigError(f'output folder {final.parent} does not exist')
        if final.exists() and not self.overwrite:
            raise ConfigError(f'output {final} exists (use --overwrite to replace it)')
        holder = final.parent / f'.{final.name}.da3-ros-partial-{os.getpid()}'
        _remove(holder)
        holder.mkdir()
        self._staged.append((holder / final.name, final))
        return holder / final.name

    def commit(self) -> None:
        for temporary, _ in self._staged:
            if not temporary.exists():
                raise FileNotFoundError(f'staged output {temporary} was never written')
        for temporary, final in self._staged:
            _remove(final)
            os.replace(temporary, final)
            temporary.parent.rmdir()
        self._staged.clear()

    def abort(self) -> None:
        for temporary, _ in self._staged:
            _remove(temporary.parent)
        self._staged.clear()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.abort()
