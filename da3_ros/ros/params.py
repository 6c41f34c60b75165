"""What both nodes' parameter tables share: the Param declaration, its value check, the
camera synchroniser's parameters, and the rclpy declaration of a whole table.

A node's parameters are one table of Param (ros/depth/params.py PARAMS, ros/slam/params.py
SLAM_PARAMS). A pure parse function turns a name -> value dict into the node's frozen config
dataclass (DepthConfig, SlamNodeConfig), so every rule is unit-testable without rclpy; on the node,
`declare_table` declares the table (descriptions, ranges, read-only unless live) and returns the
raw values for that parse function. Every error is a ConfigError whose message starts with the
parameter's name (`bad`): "parameter 'sync.slop_s': ...". Durations are declared in seconds
(`*_s`) and converted once, by time_sync.seconds_to_ns, into the configs' integer `*_ns`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from da3_ros.errors import ConfigError
from da3_ros.ros.param_paths import node_paths
from da3_ros.ros.time_sync import seconds_to_ns

REQUIRED = object()  # default of a parameter the user must set (declared without a value)


@dataclass(frozen=True)
class Param:
    """One declared parameter. kind: 'str', 'int', 'float', 'bool' or 'str[]'. live: `ros2 param
    set` applies it to the running node (checked as at start-up); otherwise it is read at
    start-up only and declared read-only, so rclpy refuses a set ("parameter is read-only")."""

    name: str
    kind: str
    default: Any
    description: str
    range: tuple[float, float] | None = None  # inclusive, for int and float
    choices: tuple[str, ...] = ()
    live: bool = False


# The camera synchroniser's parameters, shared by every node that syncs cameras.
SYNC_PARAMS: tuple[Param, ...] = (
    Param('sync.slop_s', 'float', 0.05,
          'largest stamp difference between the cameras of one set, seconds', range=(0.0, 10.0),
          live=True),
    Param('sync.queue_size', 'int', 10, 'images kept per camera while waiting for a set',
          range=(1, 1000), live=True),
    Param('sync.max_wait_s', 'float', 1.0,
          'stamp-time age after which an image waiting for its set is dropped (stale_partial); '
          '>= sync.slop_s and above the slowest camera period', range=(0.0, 60.0), live=True),
    Param('sync.max_jump_s', 'float', 5.0,
          'a stamp further than this from the newest stamp, forward or backward, is a time '
          'jump: a bad stamp is dropped alone, a timeline that moved (bag loop, clock reset) '
          'resets the synchroniser; >= sync.max_wait_s', range=(0.0, 86400.0), live=True),
)


def by_name(params, name: str) -> Param:
    """The Param called `name` in a table (KeyError when it has none)."""
    for p in params:
        if p.name == name:
            return p
    raise KeyError(name)


def check_sync(v: dict) -> None:
    """ConfigError when sync.max_wait_s < sync.slop_s (sets could never complete) or
    sync.max_jump_s < sync.max_wait_s (a frame still allowed to wait would be a time jump)."""
    if v['sync.max_wait_s'] < v['sync.slop_s']:
        raise bad('sync.max_wait_s', f"{v['sync.max_wait_s']} < sync.slop_s "
                  f"{v['sync.slop_s']}")
    if v['sync.max_jump_s'] < v['sync.max_wait_s']:
        raise bad('sync.max_jump_s', f"{v['sync.max_jump_s']} < sync.max_wait_s "
                  f"{v['sync.max_wait_s']}")


@dataclass(frozen=True)
class SyncConfig:
    """The synchroniser's bounds from SYNC_PARAMS, in integer ns (ApproximateTimeSync's
    arguments after the number of inputs)."""

    slop_ns: int
    queue_size: int
    max_wait_ns: int
    max_jump_ns: int


def sync_config(v: dict) -> SyncConfig:
    """Checked SYNC_PARAMS values (check_sync) -> SyncConfig."""
    check_sync(v)
    return SyncConfig(seconds_to_ns(v['sync.slop_s']), v['sync.queue_size'],
                      seconds_to_ns(v['sync.max_wait_s']), seconds_to_ns(v['sync.max_jump_s']))


def bad(name: str, why: str) -> ConfigError:
    return ConfigError(f'parameter {name!r}: {why}')


def check_value(p: Param, value: Any) -> Any:
    """Type, range and choice check of one raw value; returns it normalised."""
    if value is REQUIRED or value is None:
        raise bad(p.name, 'must be set')
    if p.kind == 'bool':
        ok = isinstance(value, bool)
    elif p.kind == 'int':
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif p.kind == 'float':
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        ok = ok and math.isfinite(value)
    elif p.kind == 'str':
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        value = list(value) if ok else value
    if not ok:
        raise bad(p.name, f'expected a finite {p.kind}, got {value!r}')
    if p.range is not None and not p.range[0] <= value <= p.range[1]:
        raise bad(p.name, f'{value} is outside [{p.range[0]}, {p.range[1]}]')
    for item in (value if p.kind == 'str[]' else [value]):
        if p.choices and item not in p.choices:
            raise bad(p.name, f'{item!r} is not one of {p.choices}')
    return value


def check_precision(v: dict) -> None:
    """fp16 autocast runs on CUDA only (TorchBackend refuses it on the CPU): say so naming
    `precision`, before a model is loaded. Graph backends ignore precision."""
    if v['backend'] == 'torch' and v['precision'] == 'fp16' and v['device'] == 'cpu':
        raise bad('precision', "fp16 needs a CUDA device; use auto (fp32 on the CPU), fp32 "
                  "or bf16")


def unknown_parameters(given, params, node_name: str) -> None:
    """ConfigError naming the first of `given` (parameter names from the params files and
    `-p` for this node) that is not in `params`, with the closest declared name, if any:
    rclpy itself ignores such a key, so a misspelled one would silently keep its default.
    rclpy's own parameters (use_sim_time, ...) and qos_overrides.* are not ours to judge."""
    import difflib

    known = {p.name for p in params}
    unknown = sorted(name for name in given if name not in known
                     and name not in ROS_OWN_PARAMS and not name.startswith('qos_overrides.'))
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ''
    more = f' (unknown too: {unknown[1:]})' if len(unknown) > 1 else ''
    raise bad(unknown[0], f'is not a {node_name} parameter{hint}{more}')


ROS_OWN_PARAMS = ('use_sim_time', 'start_type_description_service')


def overrides(node) -> list[str]:
    """The parameter names the params files and `-p` give this node (its name's section and
    /**), which rclpy keeps without declaring them."""
    return list(getattr(node, '_parameter_overrides', {}))


def declare_params(node, params) -> dict[str, Any]:
    """Declare a parameter table on an rclpy node (descriptions, ranges, choices) and return the
    raw values by name. A str[] parameter with default [] is declared typed (rclpy cannot infer
    an empty list's type) and reads back as []; an unset REQUIRED one reads back as None.
    Path parameters come back resolved against the params file that set them (param_paths).

    Raises ConfigError naming the parameter for values rclpy itself rejects or a path that is
    not found.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.parameter import Parameter

    types = {'str': Parameter.Type.STRING, 'int': Parameter.Type.INTEGER,
             'float': Parameter.Type.DOUBLE, 'bool': Parameter.Type.BOOL,
             'str[]': Parameter.Type.STRING_ARRAY}
    values = {}
    for p in params:
        descriptor = ParameterDescriptor(description=p.description, read_only=not p.live)
        if p.choices:
            descriptor.additional_constraints = f'one of {list(p.choices)}'
        if p.range is not None and p.kind == 'int':
            descriptor.integer_range = [IntegerRange(from_value=int(p.range[0]),
                                                     to_value=int(p.range[1]), step=1)]
        elif p.range is not None:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(p.range[0]), to_value=float(p.range[1]), step=0.0)]
        empty_list = isinstance(p.default, list) and not p.default
        default = types[p.kind] if p.default is REQUIRED or empty_list else p.default
        try:
            values[p.name] = node.declare_parameter(p.name, default, descriptor).value
        except Exception as err:  # rclpy's type / range / uninitialised errors
            raise bad(p.name, f'{type(err).__name__}: {err}') from err
        if empty_list and values[p.name] is None:
            values[p.name] = []
    # relative paths mean the folder of the params file that set them (param_paths.py)
    return node_paths(values, node.get_fully_qualified_name())


def declare_table(node, params, node_name: str) -> dict[str, Any]:
    """Refuse a params-file or `-p` key the table lacks (unknown_parameters), then declare the
    table on the rclpy node (declare_params): the raw values by name, for the node's parse
    function."""
    unknown_parameters(overrides(node), params, node_name)
    return declare_params(node, params)
