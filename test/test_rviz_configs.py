"""The rviz2 configs against the mode each one is for (a shipped params file, through the launch
logic and the nodes' own config parsers): the Fixed Frame is a frame that exists in TF in that
mode, every display topic is one the mode publishes (with compatible QoS), every display that
needs TF is in a frame connected to the Fixed Frame, and the names and comments match.

The TF a mode provides is modelled from what the nodes publish: the depth node latches a
calibration-file rig on /tf_static (built here by the node's own da3_ros/ros/depth/rig_tf.py), the
slam node publishes map -> the tracked base frame. Camera frame ids come from the drivers, so
they appear here as '<camera NAME>'.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from da3_ros.launch_logic import SLAM_NODE, config_path, rig_nodes, slam_nodes
from da3_ros.ros.depth.params import parse_depth_config
from da3_ros.ros.depth.publishers import PER_CAMERA, TOPIC_NAMES
from da3_ros.ros.depth.rig_calibration import load_rig_calibration
from da3_ros.ros.depth.rig_tf import rig_static_transforms
from da3_ros.ros.slam.params import parse_slam_config
from da3_ros.ros.slam.publishers import TOPICS as SLAM_TOPICS

ROOT = Path(__file__).resolve().parents[1]
# rviz config -> (launch file, params file it shows; the launch file's default where it has one)
MODES = {'depth_rig.rviz': ('depth_rig.launch.py', 'depth_nuscenes_6cam.yaml'),
         'slam.rviz': ('slam.launch.py', 'slam_stereo_pair.yaml')}
TF_DISPLAYS = {'rviz_default_plugins/PointCloud2', 'rviz_default_plugins/Path',
               'rviz_default_plugins/PoseArray', 'rviz_default_plugins/MarkerArray'}


@dataclass
class Mode:
    topics: dict = field(default_factory=dict)   # topic -> (frame or None, reliable, latched)
    edges: set = field(default_factory=set)      # (parent, child) TF edges the nodes publish

    def frames(self) -> set[str]:
        return {f for edge in self.edges for f in edge}

    def connected(self, a: str, b: str) -> bool:
        seen, todo = {a}, [a]
        while todo:
            f = todo.pop()
            for p, c in self.edges:
                for x, y in ((p, c), (c, p)):
                    if x == f and y not in seen:
                        seen.add(y)
                        todo.append(y)
        return b in seen


def camera_frame(name: str) -> str:
    return f'<camera {name}>'


def add_depth_node(mode: Mode, params: dict) -> None:
    cfg = parse_depth_config(params)
    first = camera_frame(cfg.cameras[0].name)
    for cam in cfg.cameras:
        for out in PER_CAMERA:
            if out in cfg.publish:
                mode.topics[f'{cam.output_prefix}/{TOPIC_NAMES[out]}'] = (
                    camera_frame(cam.name), cfg.reliable_outputs, False)
    world = cfg.rig_base_frame if cfg.rig_source != 'none' else first
    if 'fused_cloud' in cfg.publish:
        mode.topics[f'/{cfg.output_namespace}/points'] = (cfg.fixed_frame or world,
                                                          cfg.reliable_outputs, False)
    if 'rig_depth' in cfg.publish:
        mode.topics[f'/{cfg.output_namespace}/rig_depth'] = (None, cfg.reliable_outputs, False)
    if cfg.rig_source == 'yaml':  # the node latches the calibration (da3_ros/ros/depth/rig_tf.py)
        transforms = rig_static_transforms(
            load_rig_calibration(cfg.rig_calibration_file), cfg.rig_base_frame,
            [(c.name, camera_frame(c.name)) for c in cfg.cameras])
        mode.edges |= {(t.header.frame_id, t.child_frame_id) for t in transforms}


def add_slam_node(mode: Mode, params: dict) -> None:
    cfg = parse_slam_config(params)
    for name in SLAM_TOPICS:
        mode.topics[f'/{SLAM_NODE}/{name}'] = (cfg.map_frame, True, False)
    base = cfg.base_frame or camera_frame(cfg.cameras[0].strip('/').split('/')[-1])
    mode.edges.add((cfg.map_frame, base))  # without odometry; with it via odom


def mode_of(params_file: str) -> Mode:
    path, mode = config_path(params_file), Mode()
    data = yaml.safe_load(path.read_text())
    nodes = slam_nodes(path) if SLAM_NODE in data else rig_nodes(path)
    for node in nodes:
        (add_slam_node if node.name == SLAM_NODE else add_depth_node)(mode, node.parameters)
    return mode


def read_rviz(name: str) -> tuple[str, dict]:
    text = (ROOT / 'rviz' / name).read_text()
    return text, yaml.safe_load(text)['Visualization Manager']


@pytest.mark.parametrize('name', sorted(MODES))
def test_rviz_config_matches_its_mode(name):
    launch, params_file = MODES[name]
    text, manager = read_rviz(name)
    mode = mode_of(params_file)
    fixed = manager['Global Options']['Fixed Frame']
    assert fixed in mode.frames(), f'{fixed} is no TF frame in {params_file}: {mode.frames()}'
    displays = manager['Displays']
    assert {'rviz_default_plugins/PointCloud2', 'rviz_default_plugins/Image',
            'rviz_default_plugins/TF'} <= {d['Class'] for d in displays}
    for display in displays:
        if 'Topic' not in display:
            continue
        topic = display['Topic']
        assert topic['Value'] in mode.topics, (
            f"{display['Name']}: {topic['Value']} is not published with {params_file}")
        frame, reliable, latched = mode.topics[topic['Value']]
        assert reliable or topic['Reliability Policy'] == 'Best Effort', display['Name']
        assert latched or topic['Durability Policy'] == 'Volatile', display['Name']
        if display['Class'] in TF_DISPLAYS:
            assert frame is not None and mode.connected(frame, fixed), (
                f"{display['Name']}: {frame} is not connected to {fixed}")
        camera = re.fullmatch(r'(/.+)/da3/\w+', topic['Value'])
        if camera:  # per-camera displays say which camera
            assert camera[1].strip('/') in display['Name'], display['Name']
    header = ''.join(line for line in text.splitlines(keepends=True) if line.startswith('#'))
    assert params_file in header and launch in header and f'rviz/{name}' in header
    assert 'placeholder' not in header.lower()


def test_depth_rig_launch_default_is_the_rviz_mode():
    launch = (ROOT / 'launch' / 'depth_rig.launch.py').read_text()
    assert f"config_path('{MODES['depth_rig.rviz'][1]}')" in launch


def test_rig_without_calibration_has_no_base_frame():
    """The reason depth_rig.rviz needs the depth node's /tf_static: a rig.source none config
    provides no TF at all (its comment says to use the camera frame instead)."""
    assert mode_of('stereo_pair.yaml').frames() == set()
