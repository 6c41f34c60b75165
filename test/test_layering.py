"""Imports point one way: the pure core never imports ROS."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'da3_ros'
CORE = [p.name for p in PACKAGE.iterdir()
        if p.is_dir() and p.name in ('model', 'geometry', 'engine', 'slam')]
# top-level modules of the package that belong to the pure core too
CORE_MODULES = ('da3_ros.errors',)
# optional accelerator packages a core module may need (GPU machines only)
OPTIONAL = ('tensorrt', 'triton')
# what a ROS import leaves in sys.modules: rclpy, the rosidl runtime, any message package
ROS_PREFIXES = ('rclpy', 'rosidl', 'rpyutils', 'builtin_interfaces', 'std_msgs', 'sensor_msgs',
                'geometry_msgs', 'nav_msgs', 'visualization_msgs', 'diagnostic_msgs',
                'tf2_msgs', 'rcl_interfaces', 'std_srvs', 'da3_ros.msg', 'da3_ros.ros',
                'da3_ros.nodes')


def core_modules() -> list[str]:
    """Every module of the core packages, by dotted name."""
    names = list(CORE_MODULES)
    for pkg in CORE:
        for path in sorted((PACKAGE / pkg).rglob('*.py')):
            parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
            names.append('.'.join(parts[:-1] if parts[-1] == '__init__' else parts))
    return names


def test_core_packages_exist():
    assert set(CORE) == {'model', 'geometry', 'engine', 'slam'}
    assert len(core_modules()) > 40


@pytest.mark.parametrize('pkg', CORE)
def test_core_runs_without_ros(pkg):
    code = f'import sys; sys.modules["rclpy"] = None; import da3_ros.{pkg}'
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)


def test_every_core_module_imports_nothing_of_ros():
    """A fresh interpreter imports every core module (optional heavy dependencies that are
    missing, OPTIONAL, are skipped per module); then no ROS module may be loaded."""
    code = '''
import importlib, json, sys
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ImportError as err:
        failed[name] = err.name or str(err)
print(json.dumps({'modules': sorted(sys.modules), 'failed': failed}))
'''
    result = subprocess.run([sys.executable, '-c', code, json.dumps(core_modules())],
                            capture_output=True, text=True, timeout=300, check=True,
                            cwd=PACKAGE.parent)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # only a missing optional dependency may stop an import, never ROS
    assert all(missing.split('.')[0] in OPTIONAL for missing in report['failed'].values()), \
        report['failed']
    ros = [m for m in report['modules'] if m.split('.')[0] in ROS_PREFIXES
           or m.startswith(tuple(p for p in ROS_PREFIXES if '.' in p))]
    assert not ros, f'the core imported ROS modules: {ros[:10]}'
