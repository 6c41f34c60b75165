"""Every parameter YAML in config/ uses only declared parameter names, with valid values (the
rviz2 configs: test_rviz_configs.py)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from da3_ros.engine.torch_backend import TorchBackend
from da3_ros.launch_logic import SLAM_NODE, read_node_params, rig_nodes, slam_nodes
from da3_ros.ros.depth.params import PARAM_NAMES, parse_depth_config
from da3_ros.ros.slam.params import SLAM_PARAM_NAMES, parse_slam_config

ROOT = Path(__file__).resolve().parents[1]
PARAM_FILES = sorted(p for p in (ROOT / 'config').glob('*.yaml')  # nav2_*: test_nav2_config
                     if 'ros__parameters' in p.read_text() and not p.name.startswith('nav2_'))
NODES = {'da3_depth': set(PARAM_NAMES), 'da3_slam': set(SLAM_PARAM_NAMES)}


def test_expected_param_files_exist():
    names = {p.name for p in PARAM_FILES}
    assert {'depth_nuscenes_6cam.yaml', 'depth_usb_camera.yaml', 'stereo_pair.yaml',
            'jetson_small_trt.yaml', 'slam_stereo_pair.yaml', 'depth_usb_camera_nav2.yaml',
            'depth_surround_nav2.yaml'} <= names   # the Nav2 quick start (issue 19)


@pytest.mark.parametrize('path', PARAM_FILES, ids=lambda p: p.name)
def test_param_file_names_are_declared(path):
    data = yaml.safe_load(path.read_text())
    assert set(data) <= set(NODES), f'unknown node sections {set(data) - set(NODES)}'
    for node, declared in NODES.items():
        if node in data:
            used = set(data[node]['ros__parameters'])
            assert used <= declared, f'{path.name}: undeclared {sorted(used - declared)}'
    rig_nodes(path)  # values pass the node's own validation too
    if SLAM_NODE in data:
        parse_slam_config(read_node_params(path, SLAM_NODE))  # the slam node's validation
        assert [d.name for d in slam_nodes(path)] == ['da3_depth', SLAM_NODE]


def test_slam_config_sets_every_slam_parameter():
    """config/slam_*.yaml mirror the slam node's table (which has no test-only parameters)."""
    slam_files = [p for p in PARAM_FILES if p.name.startswith('slam_')]
    assert slam_files
    for path in slam_files:
        used = set(read_node_params(path, SLAM_NODE))
        assert used == set(SLAM_PARAM_NAMES), path.name
        depth = read_node_params(path, 'da3_depth')
        assert depth['cameras'] == read_node_params(path, SLAM_NODE)['cameras']  # one rig


def test_stereo_and_jetson_configs():
    stereo = yaml.safe_load((ROOT / 'config' / 'stereo_pair.yaml').read_text())
    assert len(stereo['da3_depth']['ros__parameters']['cameras']) == 2
    jetson = yaml.safe_load((ROOT / 'config' / 'jetson_small_trt.yaml').read_text())
    params = jetson['da3_depth']['ros__parameters']
    assert params['backend'] == 'tensorrt' and params['model'].endswith('DA3-SMALL')
    assert params['model_file'].endswith('.engine') and 'fp16' in params['model_file']
    assert params['process_res'] < 504


class _TinyNet(torch.nn.Module):
    """Just enough of a DA3Net for TorchBackend's device / precision checks."""

    def __init__(self):
        super().__init__()
        self.backbone, self.fast_heads = torch.nn.Linear(2, 2), False
        self.spec = SimpleNamespace(has_camera=False)


@pytest.mark.parametrize('path', PARAM_FILES, ids=lambda p: p.name)
def test_param_file_runs_on_the_cpu(path):
    """`device:=cpu` works with every shipped config: both nodes get it (slam.launch.py
    forwards the shared arguments to both), the parsers accept it, and the torch backend takes
    the config's precision on the CPU (fp16 would be refused there)."""
    data = yaml.safe_load(path.read_text())
    nodes = slam_nodes(path, {'device': 'cpu'}) if SLAM_NODE in data else rig_nodes(
        path, {'device': 'cpu'})
    for node in nodes:
        assert node.parameters['device'] == 'cpu', node.name
        cfg = (parse_slam_config if node.name == SLAM_NODE else parse_depth_config)(
            node.parameters)
        if cfg.backend == 'torch':
            assert TorchBackend(_TinyNet(), 'cpu', cfg.precision).precision in ('fp32', 'bf16')
