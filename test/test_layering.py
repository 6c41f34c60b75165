"""Imports point one way: the pure core never imports ROS, and production code never imports
the simulator (da3_ros.sim)."""
from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'da3_ros'
CORE = [p.name for p in PACKAGE.iterdir()
        if p.is_dir() and p.name in ('model', 'geometry', 'engine', 'slam', 'sim')]
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
    assert set(CORE) == {'model', 'geometry', 'engine', 'slam', 'sim'}
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


# production code: everything but the simulator and its evaluation helpers
PRODUCTION = ('nodes', 'ros', 'engine', 'model', 'geometry', 'slam', 'offline')


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of the file names, at any depth (lazy ones too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f'{node.module}.{alias.name}' for alias in node.names}
    return names


def test_production_code_never_imports_the_simulator():
    """Only the SLAM node's test-only route (SlamNode(simulated=True)) reaches da3_ros.sim, by
    one lazy import on that branch of ros/slam/inputs.system_factory."""
    allowed = {('ros/slam/inputs.py', 'da3_ros.sim.predictor')}
    files = [PACKAGE / 'cli.py', PACKAGE / 'launch_logic.py', PACKAGE / 'errors.py',
             PACKAGE / 'files.py']
    files += [p for pkg in PRODUCTION for p in sorted((PACKAGE / pkg).rglob('*.py'))]
    found = {(p.relative_to(PACKAGE).as_posix(), name)
             for p in files if p.exists() for name in imported_modules(p)
             if name == 'da3_ros.sim' or name.startswith('da3_ros.sim.')}
    assert found <= {(f, m) for f, m in allowed} | {(f, f'{m}.make_simulated')
                                                   for f, m in allowed}, sorted(found)


def test_nodes_load_without_the_simulator():
    """A fresh interpreter imports the nodes' modules; da3_ros.sim stays unloaded."""
    modules = [f'da3_ros.nodes.{p.stem}' for p in sorted((PACKAGE / 'nodes').glob('*.py'))
               if p.stem != '__init__'] + ['da3_ros.cli', 'da3_ros.offline']
    code = ('import importlib, json, sys\n'
            'for name in json.loads(sys.argv[1]):\n'
            '    try:\n'
            '        importlib.import_module(name)\n'
            '    except ImportError as err:\n'
            '        if (err.name or "").startswith("da3_ros"):\n'
            '            raise\n'
            'print(json.dumps(sorted(m for m in sys.modules if m.startswith("da3_ros"))))')
    result = subprocess.run([sys.executable, '-c', code, json.dumps(modules)],
                            capture_output=True, text=True, timeout=300, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert {'da3_ros.cli', 'da3_ros.offline'} <= set(loaded)
    if importlib.util.find_spec('rclpy') is not None:
        assert {'da3_ros.nodes.slam_node', 'da3_ros.nodes.depth_node'} <= set(loaded)
    assert not [m for m in loaded if m == 'da3_ros.sim' or m.startswith('da3_ros.sim.')]


def shell_modules() -> list[str]:
    """Every module of da3_ros/ros/ but the package markers, by dotted name."""
    return ['.'.join(p.relative_to(PACKAGE.parent).with_suffix('').parts)
            for p in sorted((PACKAGE / 'ros').rglob('*.py')) if p.name != '__init__.py']


def loads_ros(module: str) -> bool:
    """Whether importing `module` in a fresh interpreter loads any ROS module."""
    prefixes = tuple(p for p in ROS_PREFIXES if p not in ('da3_ros.ros', 'da3_ros.nodes'))
    code = (f'import sys, {module}\n'
            f'print(any(m.split(".")[0] in {prefixes!r} or m.startswith({prefixes!r})'
            f' for m in sys.modules))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1] == 'True'


def test_ros_free_shell_modules_say_why_they_are_not_core():
    """A module of the ROS shell whose import loads nothing of ROS either moves to the core or
    its docstring says why it stays, in a paragraph starting 'Why in the ROS shell'. Modules
    that name a ROS package in an import statement are ROS modules; every other one is
    imported in a fresh interpreter."""
    ros_named = tuple(p for p in ROS_PREFIXES if p not in ('da3_ros.ros', 'da3_ros.nodes'))
    free = []
    for name in shell_modules():
        path = PACKAGE.parent / (name.replace('.', '/') + '.py')
        if not any(m.split('.')[0] in ros_named or m.startswith(ros_named)
                   for m in imported_modules(path)) and not loads_ros(name):
            free.append((name, ast.get_docstring(ast.parse(path.read_text())) or ''))
    assert 'da3_ros.ros.time_sync' in [name for name, _ in free]
    silent = [name for name, doc in free if 'Why in the ROS shell' not in doc]
    assert not silent, f'ROS-free shell modules that do not say why they are not core: {silent}'
