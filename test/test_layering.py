"""Imports point one way: the pure core never imports ROS."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CORE = [p.name for p in (Path(__file__).resolve().parents[1] / 'da3_ros').iterdir()
        if p.is_dir() and p.name in ('model', 'geometry', 'engine', 'slam')]


def test_core_packages_exist():
    assert 'model' in CORE


@pytest.mark.parametrize('pkg', CORE)
def test_core_runs_without_ros(pkg):
    code = f'import sys; sys.modules["rclpy"] = None; import da3_ros.{pkg}'
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)
