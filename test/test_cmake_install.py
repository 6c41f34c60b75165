"""The CMake/colcon build installs the `da3-ros` command (docs/packaging.md, "Inside a ROS 2
workspace"), as setup.py's console script does for pip installs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_cmake_installs_the_da3_ros_command():
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    # scripts/da3-ros is copied into the build folder (shebang: the build's Python) and
    # installed from there into bin/
    assert 'file(READ scripts/da3-ros ' in cmake
    assert re.search(r'install\(PROGRAMS "\$\{CMAKE_CURRENT_BINARY_DIR\}/da3-ros" '
                     r'DESTINATION bin\)', cmake), 'no install rule for da3-ros'
    script = ROOT / 'scripts' / 'da3-ros'
    assert script.is_file() and os.access(script, os.X_OK)
    assert script.read_text().startswith('#!/usr/bin/env python3\n')


def test_installed_script_runs_the_cli():
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'da3-ros'), '--help'],
                            cwd='/', env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'export-onnx' in result.stdout and 'process' in result.stdout


BUILD = ROOT / 'build' / 'da3_ros'   # configured by scripts/setup.sh


@pytest.mark.skipif(not (BUILD / 'CMakeCache.txt').is_file() or not shutil.which('cmake'),
                    reason='no configured CMake build (scripts/setup.sh makes build/da3_ros)')
def test_cmake_install_puts_da3_ros_in_bin(tmp_path):
    """A real `cmake --install` into a fresh prefix: bin/da3-ros runs the installed CLI with the
    build's Python (the shebang), not whatever python3 comes first on PATH."""
    for command in (['cmake', '--build', str(BUILD)],
                    ['cmake', '--install', str(BUILD), '--prefix', str(tmp_path)]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    script = tmp_path / 'bin' / 'da3-ros'
    assert os.access(script, os.X_OK)
    assert script.read_text().splitlines()[0] == f'#!{_cached_python()}'
    site = next(tmp_path.glob('lib/python3*/site-packages'))
    result = subprocess.run([str(script), '--help'], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, 'PYTHONPATH': str(site)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'export-onnx' in result.stdout


def _cached_python() -> str:
    cache = (BUILD / 'CMakeCache.txt').read_text()
    return re.search(r'^_?Python3_EXECUTABLE:\w+=(.*)$', cache, re.M).group(1)


@pytest.mark.skipif(not (BUILD / 'CMakeCache.txt').is_file() or not shutil.which('cmake'),
                    reason='no configured CMake build (scripts/setup.sh makes build/da3_ros)')
def test_installed_configs_find_their_files_from_any_directory(tmp_path):
    """After the install, the installed depth_nuscenes_6cam.yaml (named package://da3_ros/...,
    run from /) finds the calibration beside it in share/da3_ros/config (issue 15 item 4)."""
    for command in (['cmake', '--build', str(BUILD)],
                    ['cmake', '--install', str(BUILD), '--prefix', str(tmp_path)]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = next(tmp_path.glob('lib/python3*/site-packages'))
    code = ("from da3_ros.launch_logic import rig_nodes; "
            "(node,) = rig_nodes('package://da3_ros/config/depth_nuscenes_6cam.yaml'); "
            "print(node.parameters['rig.calibration_file'])")
    result = subprocess.run([sys.executable, '-c', code], cwd='/', capture_output=True,
                            text=True, timeout=120, env={**os.environ, 'PYTHONPATH': str(site),
                                                         'AMENT_PREFIX_PATH': str(tmp_path)})
    assert result.returncode == 0, result.stderr
    config = tmp_path / 'share' / 'da3_ros' / 'config'
    assert result.stdout.strip() == str(config / 'nuscenes_6cam_calibration.yaml')
