"""Shared by the `da3-ros process` tests: run the CLI as a user would, and write a seeded
random-weight DA3-SMALL checkpoint folder in the official format."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def da3_ros(*args: str) -> subprocess.CompletedProcess:
    """`python -m da3_ros.cli ARGS` from the repository root (text output captured)."""
    return subprocess.run([sys.executable, '-m', 'da3_ros.cli', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def random_checkpoint(folder: Path, seed: int) -> str:
    """Save DA3-SMALL with torch.manual_seed(seed) weights into `folder`; returns its path."""
    import torch

    from da3_ros.model import build
    from da3_ros.model.checkpoint import save

    torch.manual_seed(seed)
    return str(save(build('da3-small'), folder))


def corrupt_copy(bag: Path, storage_file: str, path: Path, seed: int) -> Path:
    """A copy of rosbag2 folder `bag` at `path` whose `storage_file` is garbage after its
    first 100 bytes (a header that still opens, contents that do not decode)."""
    import shutil

    import numpy as np

    shutil.copytree(bag, path)
    target = path / storage_file
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[100:] = np.random.default_rng(seed).integers(0, 255, len(data) - 100, np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return path
