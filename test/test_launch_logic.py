"""Launch logic as data (da3_ros/launch_logic.py), and the launch files as thin mappings of it.

launch / launch_ros cannot be installed here, so the launch files are parsed (ast), not run.
"""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

from da3_ros import launch_logic
from da3_ros.errors import ConfigError
from da3_ros.launch_logic import (
    LAUNCH_OVERRIDES,
    coerce,
    config_path,
    launch_overrides,
    rig_nodes,
    single_camera_nodes,
    slam_nodes,
)

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))
ALLOWED_IMPORTS = {'launch', 'launch.actions', 'launch.substitutions', 'launch_ros.actions',
                   'da3_ros.launch_logic'}


def test_rig_yaml_gives_one_depth_node():
    (node,) = rig_nodes(config_path('stereo_pair.yaml'), {'device': 'cpu'}, namespace='robot')
    assert (node.package, node.executable, node.name, node.namespace) == (
        'da3_ros', 'depth_node', 'da3_depth', 'robot')
    assert node.parameters['cameras'] == ['/stereo/left', '/stereo/right']
    assert node.parameters['device'] == 'cpu' and node.parameters['sync.slop_s'] == 0.01
    kwargs = node.launch_kwargs()
    assert kwargs['parameters'] == [node.parameters] and kwargs['remappings'] == []


def test_calibration_file_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the YAML's relative path must not depend on the cwd
    (node,) = rig_nodes(config_path('depth_nuscenes_6cam.yaml'))
    path = Path(node.parameters['rig.calibration_file'])
    assert path.is_absolute() and path.name == 'nuscenes_6cam_calibration.yaml'


def test_single_camera_sets_the_namespace():
    (node,) = single_camera_nodes('/front', {'model': 'depth-anything/DA3-BASE'})
    assert node.parameters['cameras'] == ['/front']
    assert node.parameters['model'] == 'depth-anything/DA3-BASE'


def test_slam_yaml_gives_depth_and_slam_nodes(tmp_path):
    text = (ROOT / 'config' / 'stereo_pair.yaml').read_text()
    slam_text = ('da3_slam:\n  ros__parameters:\n    cameras: [/stereo/left]\n'
                 '    chunk.size: 32\n    chunk.overlap: 16\n    frames.map: map\n')
    path = tmp_path / 'slam.yaml'
    path.write_text(text + slam_text)
    depth, slam = slam_nodes(path)
    assert depth.executable == 'depth_node'
    assert (slam.executable, slam.name, slam.parameters) == (
        'slam_node', 'da3_slam', {'cameras': ['/stereo/left'], 'chunk.size': 32,
                                  'chunk.overlap': 16, 'frames.map': 'map'})
    with pytest.raises(ConfigError, match='da3_slam'):
        slam_nodes(config_path('stereo_pair.yaml'))
    # The slam node's parameters are checked before launch too, naming the bad one.
    path.write_text(text + slam_text.replace('chunk.size', 'chunk_size'))
    with pytest.raises(ConfigError, match="chunk_size"):
        slam_nodes(path)
    path.write_text(text + slam_text.replace('chunk.overlap: 16', 'chunk.overlap: 40'))
    with pytest.raises(ConfigError, match='chunk'):
        slam_nodes(path)


def test_bad_yaml_fails_before_launch(tmp_path):
    data = yaml.safe_load((ROOT / 'config' / 'stereo_pair.yaml').read_text())
    data['da3_depth']['ros__parameters']['sync.slopp_s'] = 0.1
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match='sync.slopp_s'):
        rig_nodes(path)
    with pytest.raises(ConfigError, match='process_res'):
        rig_nodes(config_path('stereo_pair.yaml'), {'process_res': 5})
    with pytest.raises(ConfigError, match='no da3_depth'):
        path.write_text('other_node:\n  ros__parameters: {a: 1}\n')
        rig_nodes(path)


def test_launch_arguments_are_typed():
    assert coerce('process_res', '336') == 336 and coerce('sync.slop_s', '0.1') == 0.1
    assert coerce('pose_conditioning', 'True') is True
    assert coerce('cameras', '/a, /b') == ['/a', '/b']
    with pytest.raises(ConfigError, match='not a int'):
        coerce('process_res', 'big')
    with pytest.raises(ConfigError, match='not a depth node parameter'):
        coerce('colour', 'red')
    given = {'model': 'm', 'device': '', 'process_res': '280'}
    assert launch_overrides(lambda k: given.get(k, '')) == {'model': 'm', 'process_res': 280}


def test_the_three_launch_files_exist():
    assert [p.name for p in LAUNCH_FILES] == ['depth_rig.launch.py',
                                              'depth_single_camera.launch.py', 'slam.launch.py']


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_only_maps_launch_logic(path):
    tree = ast.parse(path.read_text())
    imported, logic_names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
            if node.module == 'da3_ros.launch_logic':
                logic_names |= {a.name for a in node.names}
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
    assert all(hasattr(launch_logic, name) for name in logic_names)
    called = {n.func.id for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert called & {'rig_nodes', 'single_camera_nodes', 'slam_nodes'}  # the nodes come from it
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Dict)]  # no parameters inline
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert {f.name for f in functions} == {'_nodes', 'generate_launch_description'}
    assert all(f.end_lineno - f.lineno < 12 for f in functions)


def test_slam_launch_passes_every_shared_argument_to_both_nodes():
    given = {'model': 'depth-anything/DA3-BASE', 'backend': 'onnxruntime',
             'model_file': '/models/da3_base.onnx', 'device': 'cpu', 'precision': 'fp32',
             'process_res': 280}
    assert set(given) == set(LAUNCH_OVERRIDES)
    depth, slam = slam_nodes(config_path('slam_stereo_pair.yaml'), given)
    for node in (depth, slam):
        assert {k: node.parameters[k] for k in given} == given, node.name


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_argument_has_a_description(path):
    """`ros2 launch da3_ros <file> -s` shows a description for every argument."""
    declared = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
                and getattr(n.func, 'id', '') == 'DeclareLaunchArgument']
    assert declared
    for call in declared:
        assert 'description' in {k.arg for k in call.keywords}, ast.unparse(call)
    names = {'params_file', 'namespace', 'camera', *LAUNCH_OVERRIDES}
    assert all(launch_logic.argument_description(name).strip() for name in names)
    assert 'YAML' in launch_logic.argument_description('precision')  # '' keeps the YAML's value


DOCS = '\n'.join(p.read_text() for p in [ROOT / 'README.md',
                                         *sorted((ROOT / 'docs').glob('*.md'))])
LAUNCH_LOGIC = {'depth_rig.launch.py': rig_nodes, 'slam.launch.py': slam_nodes}


def docs_launch_commands() -> list[str]:
    """Every `ros2 launch da3_ros ...` line in the documentation's bash blocks."""
    blocks = '\n'.join(re.findall(r'```bash\n(.*?)```', DOCS, re.S)).replace('\\\n', ' ')
    return [line.split('#')[0].strip() for line in blocks.splitlines()
            if line.strip().startswith('ros2 launch da3_ros ')]


@pytest.mark.parametrize('command', docs_launch_commands())
def test_documented_launch_commands_start_their_nodes(command):
    """Each documented `ros2 launch` names a shipped launch file, and its params_file:= gives
    nodes that pass the nodes' own validation, on the CPU too. package://da3_ros/ is read in
    this checkout (what CMakeLists.txt installs; an installed share folder may be older)."""
    _, _, _, launch_file, *args = shlex.split(command)
    assert (ROOT / 'launch' / launch_file).is_file()
    params_file = dict(arg.split(':=', 1) for arg in args)['params_file']
    assert params_file.startswith('package://da3_ros/config/')
    path = ROOT / params_file.removeprefix('package://da3_ros/')
    for overrides in ({}, {'device': 'cpu'}):
        assert LAUNCH_LOGIC[launch_file](path, overrides)


def test_nav2_quick_start_covers_a_usb_camera_and_a_surround_rig():
    """Issue 19: the documented Nav2 commands run DA3METRIC on one camera and a metric
    surround rig, both publishing the obstacle cloud and the scan in base_link."""
    files = {dict(a.split(':=', 1) for a in shlex.split(c)[4:]).get('params_file')
             for c in docs_launch_commands() if 'nav2' in c}
    usb, surround = (f'package://da3_ros/config/depth_{n}_nav2.yaml'
                     for n in ('usb_camera', 'surround'))
    assert {usb, surround} <= files
    (one,), (rig,) = (rig_nodes(ROOT / f.removeprefix('package://da3_ros/'))
                      for f in (usb, surround))
    assert len(one.parameters['cameras']) == 1 and len(rig.parameters['cameras']) == 6
    assert 'DA3METRIC' in one.parameters['model']
    assert one.parameters['metric_mode'] == 'metric_model'
    assert rig.parameters['metric_mode'] in ('rig_calibration', 'nested')
    for node in (one, rig):
        assert node.parameters['publish.obstacles'] and node.parameters['publish.scan']
        assert node.parameters['nav.base_frame'] == 'base_link'
