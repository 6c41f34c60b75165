"""Path parameters (da3_ros/ros/param_paths.py): relative to the params file that set them,
then the working directory; package://; '~'; absolute kept; errors name every place looked.
The node process test is test/nodes/test_node_paths.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from da3_ros.errors import ConfigError
from da3_ros.launch_logic import rig_nodes, slam_nodes
from da3_ros.ros.param_paths import (
    node_pattern_matches,
    params_file_dirs,
    resolve_path,
    resolve_paths,
    ros_args,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rig(tmp_path, monkeypatch):
    """A params folder with rig.yaml (and a calibration beside it); cwd an empty folder."""
    folder, cwd = tmp_path / 'params', tmp_path / 'cwd'
    folder.mkdir()
    cwd.mkdir()
    (folder / 'rig.yaml').write_text('base_frame: base_link\n')
    monkeypatch.chdir(cwd)
    return folder, cwd


def test_relative_path_means_the_params_file_folder_then_the_cwd(rig):
    folder, cwd = rig
    assert resolve_path('rig.calibration_file', 'rig.yaml', 'read', folder) == str(
        folder / 'rig.yaml')
    (cwd / 'only_here.yaml').write_text('')
    assert resolve_path('rig.calibration_file', 'only_here.yaml', 'read', folder) == str(
        cwd / 'only_here.yaml')
    assert resolve_path('rig.calibration_file', 'only_here.yaml', 'read') == str(
        cwd / 'only_here.yaml')


def test_not_found_names_the_parameter_and_every_place_looked(rig):
    folder, cwd = rig
    with pytest.raises(ConfigError) as err:
        resolve_path('rig.calibration_file', 'sub/missing.yaml', 'read', folder)
    message = str(err.value)
    assert message.startswith("parameter 'rig.calibration_file': 'sub/missing.yaml' not found")
    assert str(folder / 'sub/missing.yaml') in message and str(cwd / 'sub/missing.yaml') in message


def test_absolute_kept_home_expanded_empty_unset(rig, monkeypatch):
    folder, _ = rig
    assert resolve_path('model_file', '/nowhere/x.onnx', 'read', folder) == '/nowhere/x.onnx'
    monkeypatch.setenv('HOME', str(folder))
    assert resolve_path('rig.calibration_file', '~/rig.yaml', 'read') == str(folder / 'rig.yaml')
    assert resolve_path('map.load_path', '', 'read', folder) == ''


def test_written_folders_and_model_ids(rig):
    folder, cwd = rig
    assert resolve_path('map.save_path', 'maps/new', 'write', folder) == str(folder / 'maps/new')
    assert resolve_path('map.save_path', 'maps/new', 'write') == str(cwd / 'maps/new')
    # a Hugging Face id stays as given; a checkpoint folder beside the params file is found
    assert resolve_path('model', 'depth-anything/DA3-LARGE', 'model', folder) == (
        'depth-anything/DA3-LARGE')
    (folder / 'ckpt').mkdir()
    assert resolve_path('model', 'ckpt', 'model', folder) == str(folder / 'ckpt')


def test_package_url_is_the_share_folder(rig):
    found = Path(resolve_path('rig.calibration_file',
                              'package://da3_ros/config/nuscenes_6cam_calibration.yaml', 'read'))
    assert found.is_file() and found.parts[-3:] == ('da3_ros', 'config',
                                                    'nuscenes_6cam_calibration.yaml')
    with pytest.raises(ConfigError, match="parameter 'model_file': 'package://da3_ros/no.onnx'"):
        resolve_path('model_file', 'package://da3_ros/no.onnx', 'read')
    with pytest.raises(ConfigError, match='no share folder'):
        resolve_path('model_file', 'package://no_such_package/x.onnx', 'read')


def test_resolve_paths_touches_path_parameters_only(rig):
    folder, _ = rig
    values = {'rig.calibration_file': 'rig.yaml', 'image_topic': 'rig.yaml', 'cameras': ['/a']}
    assert resolve_paths(values, {'rig.calibration_file': folder}) == {
        **values, 'rig.calibration_file': str(folder / 'rig.yaml')}


def test_ros_args_and_node_patterns():
    argv = ['depth_node', '--ros-args', '--params-file', 'a.yaml', '--', 'x',
            '--ros-args', '-p', 'model:=m']
    assert ros_args(argv) == ['--params-file', 'a.yaml', '-p', 'model:=m']
    for pattern in ('da3_depth', '/da3_depth', '/**', '**', '/**/da3_depth', '/*', 'da3_*'):
        assert node_pattern_matches(pattern, '/da3_depth'), pattern
    assert node_pattern_matches('/robot/da3_depth', '/robot/da3_depth')
    assert node_pattern_matches('/**/da3_depth', '/robot/da3_depth')
    for pattern in ('da3_slam', '/robot/da3_depth', '/*'):
        assert not node_pattern_matches(pattern, '/other/da3_depth'), pattern


def test_params_file_dirs_follow_the_last_file_that_sets_the_parameter(tmp_path):
    first, second = tmp_path / 'a', tmp_path / 'b'
    first.mkdir()
    second.mkdir()
    (first / 'p.yaml').write_text(yaml.safe_dump({
        'da3_depth': {'ros__parameters': {'rig.calibration_file': 'r.yaml', 'model': 'm'}},
        'da3_slam': {'ros__parameters': {'map.load_path': 'map'}}}))
    (second / 'p.yaml').write_text(yaml.safe_dump({  # nested keys and a wildcard section
        '/**': {'ros__parameters': {'rig': {'calibration_file': 'r.yaml'}}}}))
    argv = ['x', '--ros-args', '--params-file', str(first / 'p.yaml')]
    assert params_file_dirs('/da3_depth', argv) == {'rig.calibration_file': first,
                                                    'model': first}
    assert params_file_dirs('/da3_slam', argv) == {'map.load_path': first}
    argv += ['--params-file', str(second / 'p.yaml'), '-p', 'model:=other']
    assert params_file_dirs('/da3_depth', argv) == {'rig.calibration_file': second}
    assert params_file_dirs('/da3_depth', ['x']) == {}


def test_launch_resolves_against_the_yaml_folder_and_overrides_against_the_cwd(rig):
    folder, cwd = rig
    params = yaml.safe_load((ROOT / 'config' / 'depth_nuscenes_6cam.yaml').read_text())
    params['da3_depth']['ros__parameters']['rig.calibration_file'] = 'rig.yaml'
    (folder / 'cal.yaml').write_text(yaml.safe_dump(params))
    (node,) = rig_nodes(folder / 'cal.yaml', {'device': 'cpu'})
    assert node.parameters['rig.calibration_file'] == str(folder / 'rig.yaml')
    (cwd / 'ckpt').mkdir()
    (node,) = rig_nodes(folder / 'cal.yaml', {'model': 'ckpt'})
    assert node.parameters['model'] == str(cwd / 'ckpt')
    with pytest.raises(ConfigError, match=r"cal\.yaml: parameter 'rig\.calibration_file'"):
        rig_nodes(folder / 'cal.yaml', {'rig.calibration_file': 'rig.yaml'})


def test_launch_params_file_from_the_package_and_slam_paths(rig):
    folder, _ = rig
    (node,) = rig_nodes('package://da3_ros/config/stereo_pair.yaml')
    assert node.parameters['cameras'] == ['/stereo/left', '/stereo/right']
    (folder / 'maps' / 'old').mkdir(parents=True)
    (folder / 'maps' / 'old' / 'metadata.json').write_text('{}')
    text = (ROOT / 'config' / 'stereo_pair.yaml').read_text() + yaml.safe_dump({'da3_slam': {
        'ros__parameters': {'cameras': ['/stereo/left'], 'map.save_path': 'maps/new',
                            'map.load_path': 'maps/old'}}})
    (folder / 'slam.yaml').write_text(text)
    _, slam = slam_nodes(folder / 'slam.yaml')
    assert slam.parameters['map.save_path'] == str(folder / 'maps/new')
    assert slam.parameters['map.load_path'] == str(folder / 'maps/old')


def test_documented_params_files_work_from_any_directory():
    """The docs' and configs' `--params-file X` / `params_file:=X` name X by the package's share
    folder (or package://), never relative to a checkout the user may not be in."""
    texts = [p.read_text() for p in [ROOT / 'README.md', *(ROOT / 'docs').glob('*.md'),
                                     *(ROOT / 'config').glob('*.yaml'),
                                     *(ROOT / 'launch').glob('*.py')]]
    path = r'(\$\(ros2 pkg prefix [^)]*\)\S*|[^`\s]+)'
    given = re.findall(r'(?:--params-file\s+|params_file:=)' + path, '\n'.join(texts))
    assert len(given) > 5, given
    for file in given:
        assert file.startswith(('$(ros2 pkg prefix da3_ros)/share/da3_ros/', 'package://',
                                '<share>/', 'my_', '...')), file
