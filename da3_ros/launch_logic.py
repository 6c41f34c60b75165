"""What the launch files start, as plain data: a rig parameter YAML -> node descriptions.

launch and launch_ros are not installable here, so every decision lives in
this module and the files in launch/ only map `NodeDescription`s onto launch_ros.actions.Node:

    for d in rig_nodes('config/stereo_pair.yaml', {'device': 'cpu'}):
        Node(**d.launch_kwargs())

A rig YAML is a normal ROS 2 parameter file: `da3_depth: {ros__parameters: {...}}` with the
depth node's parameters (da3_ros/ros/depth/params.py; cameras are namespaces) and, for SLAM,
`da3_slam: {ros__parameters: {...}}` with the slam node's (da3_ros/ros/slam/params.py). Both
are validated here with the nodes' own parsers, so a bad file fails before launch.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from da3_ros.errors import ConfigError
from da3_ros.ros.depth.params import PARAMS, parse_depth_config
from da3_ros.ros.param_paths import resolve_path, resolve_paths
from da3_ros.ros.slam.params import SLAM_PARAM_NAMES, parse_slam_config

PACKAGE = 'da3_ros'
DEPTH_NODE, SLAM_NODE = 'da3_depth', 'da3_slam'   # node names = the YAML's top-level keys
DEPTH_EXECUTABLE, SLAM_EXECUTABLE = 'depth_node', 'slam_node'
KINDS = {p.name: p.kind for p in PARAMS}
# depth parameters every launch file exposes as launch arguments ('' = keep the YAML's value);
# slam.launch.py gives them to the slam node too (it declares each of them)
LAUNCH_OVERRIDES = ('model', 'backend', 'model_file', 'device', 'precision', 'process_res')
ARGUMENT_DESCRIPTIONS = {
    'params_file': 'parameter YAML with da3_depth (and, for SLAM, da3_slam) ros__parameters: '
                   'a path or package://da3_ros/config/<file>; relative paths in it are '
                   'relative to its folder',
    'namespace': "namespace of the started nodes ('' = none)",
    'camera': 'camera namespace: images on <camera>/image_raw, CameraInfo on '
              '<camera>/camera_info',
}


@dataclass(frozen=True)
class NodeDescription:
    """One node to start. parameters: name -> value (dotted names as declared);
    remappings: (from, to) topic pairs."""

    package: str
    executable: str
    name: str
    namespace: str = ''
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    def launch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of launch_ros.actions.Node."""
        return {'package': self.package, 'executable': self.executable, 'name': self.name,
                'namespace': self.namespace, 'parameters': [dict(self.parameters)],
                'remappings': list(self.remappings), 'output': 'screen'}


def config_path(filename: str) -> Path:
    """config/<filename> of the source tree, else of the installed share/da3_ros."""
    source = Path(__file__).resolve().parents[1] / 'config' / filename
    if source.is_file():
        return source
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        installed = Path(prefix) / 'share' / PACKAGE / 'config' / filename
        if prefix and installed.is_file():
            return installed
    raise ConfigError(f'config file {filename!r} not found in the source tree or the '
                      'AMENT_PREFIX_PATH share folders')


def read_node_params(path: str | Path, node: str) -> dict[str, Any] | None:
    """The ros__parameters of `node` in a parameter YAML, or None if the node is absent."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f'cannot read parameter file {path}: {err}') from err
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected `<node>: {{ros__parameters: ...}}` mappings')
    section = data.get(node)
    if section is None:
        return None
    params = section.get('ros__parameters') if isinstance(section, dict) else None
    if not isinstance(params, dict):
        raise ConfigError(f'{path}: {node} has no ros__parameters mapping')
    return dict(params)


def coerce(name: str, text: str) -> Any:
    """A launch-argument string -> the depth parameter's type ('a,b' for string lists)."""
    kind = KINDS.get(name)
    if kind is None:
        raise ConfigError(f'{name!r} is not a depth node parameter')
    try:
        if kind == 'bool':
            if text.lower() not in ('true', 'false'):
                raise ValueError(text)
            return text.lower() == 'true'
        if kind == 'int':
            return int(text)
        if kind == 'float':
            return float(text)
        return [v.strip() for v in text.split(',') if v.strip()] if kind == 'str[]' else text
    except ValueError as err:
        raise ConfigError(f'parameter {name!r}: {text!r} is not a {kind}') from err


def argument_description(name: str) -> str:
    """The `ros2 launch ... -s` description of a launch argument."""
    if name in ARGUMENT_DESCRIPTIONS:
        return ARGUMENT_DESCRIPTIONS[name]
    if name not in LAUNCH_OVERRIDES:
        raise ConfigError(f'{name!r} is not a launch argument')
    param = next(p for p in PARAMS if p.name == name)
    choices = f" (one of {', '.join(param.choices)})" if param.choices else ''
    return f"{name} of the DA3 node(s): {param.description}{choices}; '' keeps the YAML's value"


def with_overrides(params_file: str | Path, node: str,
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The node's ros__parameters of a YAML with overrides on top, path parameters resolved
    (da3_ros/ros/param_paths.py): the YAML's against its folder, the overrides' against the
    working directory. Absolute, since the node gets them in launch_ros's temporary file.
    params_file may be package://da3_ros/config/<file>."""
    path = Path(resolve_path('params_file', str(params_file), 'read'))
    params = read_node_params(path, node)
    if params is None:
        raise ConfigError(f'{path}: no {node}: ros__parameters section')
    overrides = overrides or {}
    folder = path.absolute().parent
    try:
        return resolve_paths({**params, **overrides},
                             {name: folder for name in params if name not in overrides})
    except ConfigError as err:
        raise ConfigError(f'{path}: {err}') from err


def depth_node(params_file: str | Path, overrides: dict[str, Any] | None = None,
               namespace: str = '') -> NodeDescription:
    """The depth node of a rig YAML, with overrides (typed values) on top; validated."""
    params = with_overrides(params_file, DEPTH_NODE, overrides)
    try:
        parse_depth_config(params)
    except ConfigError as err:
        raise ConfigError(f'{params_file}: {err}') from err
    return NodeDescription(PACKAGE, DEPTH_EXECUTABLE, DEPTH_NODE, namespace, params)


def single_camera_nodes(camera: str = '/camera', overrides: dict[str, Any] | None = None,
                        params_file: str | Path | None = None) -> list[NodeDescription]:
    """One camera namespace on config/depth_usb_camera.yaml (or params_file)."""
    path = params_file or config_path('depth_usb_camera.yaml')
    return [depth_node(path, {**(overrides or {}), 'cameras': [camera]})]


def rig_nodes(params_file: str | Path, overrides: dict[str, Any] | None = None,
              namespace: str = '') -> list[NodeDescription]:
    """The N-camera depth node of a rig YAML."""
    return [depth_node(params_file, overrides, namespace)]


def slam_nodes(params_file: str | Path, overrides: dict[str, Any] | None = None,
               namespace: str = '') -> list[NodeDescription]:
    """Depth node + slam node from one YAML, both validated. The overrides (the shared launch
    arguments: model, device, precision, ...) go to both nodes."""
    slam = with_overrides(params_file, SLAM_NODE,
                          {k: v for k, v in (overrides or {}).items() if k in SLAM_PARAM_NAMES})
    try:
        parse_slam_config(slam)
    except ConfigError as err:
        raise ConfigError(f'{params_file}: {err}') from err
    return [depth_node(params_file, overrides, namespace),
            NodeDescription(PACKAGE, SLAM_EXECUTABLE, SLAM_NODE, namespace, slam)]


def launch_overrides(value_of: Callable[[str], str]) -> dict[str, Any]:
    """Typed depth parameters from the LAUNCH_OVERRIDES launch arguments; value_of(name) gives
    an argument's text ('' means 'not given': the YAML's value stays)."""
    texts = {name: value_of(name) for name in LAUNCH_OVERRIDES}
    return {name: coerce(name, text) for name, text in texts.items() if text != ''}
