"""The depth node's parameters: one declaration table, validated into a frozen DepthConfig.

Every parameter is declared once (PARAMS: name, default, description, range or choices) and read
into DepthConfig by `parse_depth_config`, a pure function of a name -> value dict, so every rule
is unit-testable without rclpy. Every error is a ConfigError whose message starts with the
parameter's name: "parameter 'sync.slop_s': ...". config/depth_*.yaml mirror these names.
Parameters marked live (Param.live) take `ros2 param set` on the running node (apply_live,
ros/live_params.py); the others are declared read-only. A key in the params files or `-p` that
the table lacks stops the node naming it (unknown_parameters).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from da3_ros.errors import ConfigError
from da3_ros.ros.param_paths import node_paths
from da3_ros.ros.pointcloud import CloudConfig

REQUIRED = object()  # default of a parameter the user must set (declared without a value)
METRIC_MODES = ('relative', 'metric_model', 'rig_calibration', 'nested')
RIG_SOURCES = ('none', 'tf', 'yaml')
TRANSPORTS = ('raw', 'compressed')
RESOLUTIONS = ('network', 'input')
OUTPUTS = ('depth', 'confidence', 'camera_info', 'cloud', 'fused_cloud', 'colorized_depth',
           'tf', 'rig_depth')


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


def check_sync(v: dict) -> None:
    """ConfigError when sync.max_wait_s < sync.slop_s (sets could never complete) or
    sync.max_jump_s < sync.max_wait_s (a frame still allowed to wait would be a time jump)."""
    if v['sync.max_wait_s'] < v['sync.slop_s']:
        raise _bad('sync.max_wait_s', f"{v['sync.max_wait_s']} < sync.slop_s "
                   f"{v['sync.slop_s']}")
    if v['sync.max_jump_s'] < v['sync.max_wait_s']:
        raise _bad('sync.max_jump_s', f"{v['sync.max_jump_s']} < sync.max_wait_s "
                   f"{v['sync.max_wait_s']}")


PARAMS: tuple[Param, ...] = (
    Param('cameras', 'str[]', REQUIRED,
          'camera namespaces in rig order, e.g. [/cam_front, /cam_left]; image topic '
          '<ns>/<image_topic>[/compressed], info <ns>/<camera_info_topic>; the camera name is '
          "the namespace's last component"),
    Param('image_topic', 'str', 'image_raw', 'image topic name inside each camera namespace'),
    Param('image_transport', 'str[]', ['raw'],
          "'raw' (sensor_msgs/Image) or 'compressed' (CompressedImage on <image>/compressed); "
          'one entry for all cameras or one per camera', choices=TRANSPORTS),
    Param('camera_info_topic', 'str', 'camera_info', 'CameraInfo topic inside each namespace'),
    Param('output_namespace', 'str', 'da3',
          'per-camera outputs go to <camera ns>/<this>/..., rig outputs to <this>/...'),
    Param('model', 'str', 'depth-anything/DA3-LARGE',
          'Hugging Face id or checkpoint folder (torch); expected variant for graph backends'),
    Param('backend', 'str', 'torch', 'inference backend',
          choices=('torch', 'onnxruntime', 'tensorrt')),
    Param('model_file', 'str', '', '.onnx / .engine file for onnxruntime / tensorrt'),
    Param('verify_onnx', 'str', '',
          'tensorrt: the .onnx the engine was built from; at start the engine and ONNX Runtime '
          'run one seeded input and the node refuses to start when they differ beyond the '
          "tolerance of the engine's precision (as build-engine --verify); '' = off"),
    Param('device', 'str', 'cuda', "'cpu', 'cuda' or 'cuda:N'"),
    Param('precision', 'str', 'auto',
          'torch autocast precision; auto: bf16 on GPUs that have it (Ampere and later), '
          'fp16 on older GPUs, fp32 on the CPU', choices=('auto', 'fp32', 'bf16', 'fp16')),
    Param('compile', 'bool', False,
          'torch on CUDA with precision bf16 (or auto on a bf16 GPU): torch.compile the '
          'network (bf16 heads, CUDA graphs; the first set compiles for tens of seconds)'),
    Param('check_device_path', 'bool', True,
          'on the GPU path, also build the first set on the host path and compare the '
          'messages (result logged and in /diagnostics device_path_check)'),
    Param('process_res', 'int', 504, 'network processing resolution (longest side, pixels)',
          range=(14, 4096)),
    Param('process_res_method', 'str', 'upper_bound_resize', 'official resize policy',
          choices=('upper_bound_resize', 'upper_bound_crop', 'lower_bound_resize',
                   'lower_bound_crop')),
    *SYNC_PARAMS,
    Param('metric_mode', 'str', 'relative',
          'scale source: relative (model units), metric_model (DA3METRIC + CameraInfo focal), '
          'rig_calibration (scale of the known rig extrinsics), nested (DA3NESTED)',
          choices=METRIC_MODES),
    Param('pose_conditioning', 'bool', False,
          "feed the rig extrinsics and CameraInfo intrinsics to DA3's camera encoder"),
    Param('rig.source', 'str', 'none', 'where rig extrinsics come from', choices=RIG_SOURCES),
    Param('rig.base_frame', 'str', 'base_link',
          'frame the rig extrinsics are expressed in (TF lookups and the calibration YAML)'),
    Param('rig.calibration_file', 'str', '', 'calibration YAML for rig.source yaml'),
    Param('fixed_frame', 'str', '',
          "frame of the fused cloud and RigDepth; '' = DA3's world: rig.base_frame with rig "
          "extrinsics, else the first camera's frame; another frame is looked up in TF"),
    Param('pose_parent_frame', 'str', '',
          "parent frame of the published DA3 camera poses; '' = the fixed frame"),
    Param('pose_frame_suffix', 'str', '_da3',
          'DA3 poses go to TF child <camera frame><suffix>, never to frames other nodes own'),
    Param('tf_tolerance_s', 'float', 0.05,
          'largest stamp gap for dynamic TF lookups (fixed / parent frame)', range=(0.0, 10.0)),
    Param('output_resolution', 'str', 'network',
          'publish depth at the network resolution or resampled to the input resolution; '
          'CameraInfo always matches', choices=RESOLUTIONS),
    *(Param(f'publish.{out}', 'bool', out != 'colorized_depth', f'publish {out}', live=True)
      for out in OUTPUTS),
    Param('cloud.min_confidence', 'float', 0.0,
          'drop cloud points with confidence below this (DA3 confidence is >= 1; 0 keeps all)',
          range=(0.0, 1e6), live=True),
    Param('cloud.remove_sky', 'bool', True, 'drop sky pixels (models that predict sky)',
          live=True),
    Param('cloud.stride', 'int', 1, 'use every stride-th pixel row and column', range=(1, 64),
          live=True),
    Param('cloud.voxel_size_m', 'float', 0.0,
          'per-camera voxel averaging edge, 0 = off (on a GPU, > 0 takes the host path)',
          range=(0.0, 100.0), live=True),
    Param('cloud.min_range_m', 'float', 0.0, 'drop points nearer than this to the camera',
          range=(0.0, 1e6), live=True),
    Param('cloud.max_range_m', 'float', 200.0, 'drop points farther than this',
          range=(0.0, 1e6), live=True),
    Param('fused.voxel_size_m', 'float', 0.0, 'fused rig cloud voxel edge, 0 = off',
          range=(0.0, 100.0), live=True),
    Param('qos.reliable_inputs', 'bool', False,
          'subscribe reliable instead of sensor-data (best effort) QoS'),
    Param('qos.reliable_outputs', 'bool', False,
          'publish reliable instead of sensor-data (best effort) QoS'),
    Param('diagnostics_period_s', 'float', 1.0, '/diagnostics publishing period',
          range=(0.01, 60.0)),
    Param('log_throttle_s', 'float', 5.0, 'one log line per drop cause per this many seconds',
          range=(0.0, 3600.0), live=True),
)
PARAM_NAMES = tuple(p.name for p in PARAMS)


@dataclass(frozen=True)
class CameraSpec:
    """One camera of the rig: where its messages come from and its outputs go."""

    name: str            # last namespace component, e.g. 'CAM_FRONT'
    namespace: str       # as given, e.g. '/CAM_FRONT'
    image_topic: str     # '<ns>/image_raw' or '<ns>/image_raw/compressed'
    info_topic: str
    compressed: bool
    output_prefix: str   # '<ns>/<output_namespace>'


@dataclass(frozen=True)
class DepthConfig:
    """Validated node configuration (units: seconds -> integer ns, metres)."""

    cameras: tuple[CameraSpec, ...]
    output_namespace: str
    model: str
    backend: str
    model_file: str | None
    verify_onnx: str | None
    device: str
    precision: str
    compile: bool
    check_device_path: bool
    process_res: int
    process_res_method: str
    slop_ns: int
    queue_size: int
    max_wait_ns: int
    max_jump_ns: int
    metric_mode: str
    pose_conditioning: bool
    rig_source: str
    rig_base_frame: str
    rig_calibration_file: str | None
    fixed_frame: str
    pose_parent_frame: str
    pose_frame_suffix: str
    tf_tolerance_ns: int
    output_resolution: str
    publish: frozenset[str]
    cloud: CloudConfig
    remove_sky: bool
    fused_voxel_size_m: float
    reliable_inputs: bool
    reliable_outputs: bool
    diagnostics_period_s: float
    log_throttle_s: float

    @property
    def needs_intrinsics(self) -> bool:
        """CameraInfo K goes to the predictor (camera encoder or metric-model focal scaling)."""
        return self.pose_conditioning or self.metric_mode == 'metric_model'

    @property
    def needs_extrinsics(self) -> bool:
        return self.pose_conditioning


def _bad(name: str, why: str) -> ConfigError:
    return ConfigError(f'parameter {name!r}: {why}')


def _check_value(p: Param, value: Any) -> Any:
    """Type, range and choice check of one raw value; returns it normalised."""
    if value is REQUIRED or value is None:
        raise _bad(p.name, 'must be set')
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
        raise _bad(p.name, f'expected a finite {p.kind}, got {value!r}')
    if p.range is not None and not p.range[0] <= value <= p.range[1]:
        raise _bad(p.name, f'{value} is outside [{p.range[0]}, {p.range[1]}]')
    for item in (value if p.kind == 'str[]' else [value]):
        if p.choices and item not in p.choices:
            raise _bad(p.name, f'{item!r} is not one of {p.choices}')
    return value


def check_precision(v: dict) -> None:
    """fp16 autocast runs on CUDA only (TorchBackend refuses it on the CPU): say so naming
    `precision`, before a model is loaded. Graph backends ignore precision."""
    if v['backend'] == 'torch' and v['precision'] == 'fp16' and v['device'] == 'cpu':
        raise _bad('precision', "fp16 needs a CUDA device; use auto (fp32 on the CPU), fp32 "
                   "or bf16")


def check_cloud(v: dict) -> None:
    """ConfigError when cloud.max_range_m <= cloud.min_range_m (no point could pass)."""
    if v['cloud.min_range_m'] >= v['cloud.max_range_m']:
        raise _bad('cloud.max_range_m', f"{v['cloud.max_range_m']} <= cloud.min_range_m "
                   f"{v['cloud.min_range_m']}")


def _cameras(v: dict) -> tuple[CameraSpec, ...]:
    namespaces, transports = v['cameras'], v['image_transport']
    if not namespaces:
        raise _bad('cameras', 'needs at least one camera namespace')
    if len(transports) not in (1, len(namespaces)):
        raise _bad('image_transport', f'needs 1 or {len(namespaces)} entries, got '
                   f'{len(transports)}')
    transports = transports * len(namespaces) if len(transports) == 1 else transports
    for topic_param in ('image_topic', 'camera_info_topic'):
        if not v[topic_param].strip('/'):
            raise _bad(topic_param, 'must not be empty')
    specs = []
    for ns, transport in zip(namespaces, transports, strict=True):
        name = ns.strip('/').split('/')[-1]
        if not name or ' ' in ns:
            raise _bad('cameras', f'{ns!r} is not a namespace')
        image = f"{ns.rstrip('/')}/{v['image_topic'].strip('/')}"
        compressed = transport == 'compressed'
        specs.append(CameraSpec(
            name, ns, image + '/compressed' * compressed,
            f"{ns.rstrip('/')}/{v['camera_info_topic'].strip('/')}", compressed,
            f"{ns.rstrip('/')}/{v['output_namespace'].strip('/')}"))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise _bad('cameras', f'camera names (last namespace components) repeat: {names}')
    return tuple(specs)


def _check_modes(v: dict) -> None:
    mode, source = v['metric_mode'], v['rig.source']
    if mode == 'rig_calibration' and source == 'none':
        raise _bad('rig.source', "metric_mode 'rig_calibration' needs rig extrinsics: "
                   "set rig.source to 'tf' or 'yaml'")
    if mode == 'rig_calibration' and not v['pose_conditioning']:
        raise _bad('pose_conditioning', "metric_mode 'rig_calibration' feeds the rig to the "
                   'camera encoder: set pose_conditioning true')
    if v['pose_conditioning'] and source == 'none':
        raise _bad('rig.source', "pose_conditioning needs rig extrinsics: set 'tf' or 'yaml'")
    if source == 'yaml' and not Path(v['rig.calibration_file']).is_file():
        raise _bad('rig.calibration_file', f"{v['rig.calibration_file']!r} is not a file "
                   "(needed by rig.source 'yaml')")
    if source != 'none' and not v['rig.base_frame']:
        raise _bad('rig.base_frame', 'must name the frame of the rig extrinsics')
    check_sync(v)
    check_cloud(v)
    if v['backend'] != 'torch' and not v['model_file']:
        raise _bad('model_file', f"the {v['backend']} backend needs an .onnx / .engine file")
    if v['backend'] == 'torch' and v['model_file']:
        raise _bad('model_file', 'the torch backend loads `model`; leave model_file empty')
    if v['verify_onnx'] and v['backend'] != 'tensorrt':
        raise _bad('verify_onnx', f"checks a TensorRT engine; backend is {v['backend']}")
    if not v['model']:
        raise _bad('model', 'must name a Hugging Face id or a checkpoint folder')
    device = v['device']
    if not (device in ('cpu', 'cuda') or (device.startswith('cuda:')
                                          and device[5:].isdigit())):
        raise _bad('device', f"{device!r} is not 'cpu', 'cuda' or 'cuda:N'")
    check_precision(v)
    if v['compile'] and (v['backend'] != 'torch' or not device.startswith('cuda')
                         or v['precision'] not in ('bf16', 'auto')):
        raise _bad('compile', 'needs backend torch, device cuda and precision bf16 or auto')


def parse_depth_config(values: dict[str, Any]) -> DepthConfig:
    """Raw parameter values (name -> value; missing names take defaults) -> DepthConfig.

    Raises ConfigError naming the first bad parameter.
    """
    if unknown := sorted(set(values) - set(PARAM_NAMES)):
        raise _bad(unknown[0], 'is not a depth node parameter')
    v = {p.name: _check_value(p, values.get(p.name, p.default)) for p in PARAMS}
    cameras = _cameras(v)
    _check_modes(v)
    s_to_ns = 1_000_000_000
    return DepthConfig(
        cameras=cameras, output_namespace=v['output_namespace'].strip('/'), model=v['model'],
        backend=v['backend'], model_file=v['model_file'] or None,
        verify_onnx=v['verify_onnx'] or None, device=v['device'],
        precision=v['precision'], compile=v['compile'],
        check_device_path=v['check_device_path'], process_res=v['process_res'],
        process_res_method=v['process_res_method'],
        slop_ns=round(v['sync.slop_s'] * s_to_ns), queue_size=v['sync.queue_size'],
        max_wait_ns=round(v['sync.max_wait_s'] * s_to_ns),
        max_jump_ns=round(v['sync.max_jump_s'] * s_to_ns), metric_mode=v['metric_mode'],
        pose_conditioning=v['pose_conditioning'], rig_source=v['rig.source'],
        rig_base_frame=v['rig.base_frame'],
        rig_calibration_file=v['rig.calibration_file'] or None,
        fixed_frame=v['fixed_frame'], pose_parent_frame=v['pose_parent_frame'],
        pose_frame_suffix=v['pose_frame_suffix'],
        tf_tolerance_ns=round(v['tf_tolerance_s'] * s_to_ns),
        output_resolution=v['output_resolution'],
        publish=frozenset(out for out in OUTPUTS if v[f'publish.{out}']),
        cloud=CloudConfig(min_confidence=v['cloud.min_confidence'] or None,
                          min_range_m=v['cloud.min_range_m'],
                          max_range_m=v['cloud.max_range_m'], stride=v['cloud.stride'],
                          voxel_size_m=v['cloud.voxel_size_m']),
        remove_sky=v['cloud.remove_sky'], fused_voxel_size_m=v['fused.voxel_size_m'],
        reliable_inputs=v['qos.reliable_inputs'], reliable_outputs=v['qos.reliable_outputs'],
        diagnostics_period_s=v['diagnostics_period_s'], log_throttle_s=v['log_throttle_s'])


def apply_live(cfg: DepthConfig, values: dict[str, Any]) -> DepthConfig:
    """The running configuration with new values of the live parameters (`ros2 param set`).

    values: name -> raw value of every live parameter (the current ones and the new ones),
    checked as at start-up (type, range, choices, check_sync, check_cloud); raises ConfigError
    naming the parameter. Gives what parse_depth_config gives for the same values.
    """
    v = {p.name: _check_value(p, values[p.name]) for p in PARAMS if p.live}
    check_sync(v)
    check_cloud(v)
    s_to_ns = 1_000_000_000
    return replace(
        cfg, slop_ns=round(v['sync.slop_s'] * s_to_ns), queue_size=v['sync.queue_size'],
        max_wait_ns=round(v['sync.max_wait_s'] * s_to_ns),
        max_jump_ns=round(v['sync.max_jump_s'] * s_to_ns),
        publish=frozenset(out for out in OUTPUTS if v[f'publish.{out}']),
        cloud=CloudConfig(min_confidence=v['cloud.min_confidence'] or None,
                          min_range_m=v['cloud.min_range_m'],
                          max_range_m=v['cloud.max_range_m'], stride=v['cloud.stride'],
                          voxel_size_m=v['cloud.voxel_size_m']),
        remove_sky=v['cloud.remove_sky'], fused_voxel_size_m=v['fused.voxel_size_m'],
        log_throttle_s=v['log_throttle_s'])


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
    raise _bad(unknown[0], f'is not a {node_name} parameter{hint}{more}')


ROS_OWN_PARAMS = ('use_sim_time', 'start_type_description_service')


def overrides(node) -> list[str]:
    """The parameter names the params files and `-p` give this node (its name's section and
    /**), which rclpy keeps without declaring them."""
    return list(getattr(node, '_parameter_overrides', {}))


def check_model_for_mode(cfg: DepthConfig, model_name: str, is_anyview: bool,
                         supports_cameras: bool) -> None:
    """Raise ConfigError when the loaded model cannot serve metric_mode / pose_conditioning.

    model_name: the variant, e.g. 'da3-small', 'da3metric-large', 'da3nested-giant-large'
    """
    if cfg.metric_mode == 'metric_model' and not model_name.startswith('da3metric'):
        raise _bad('metric_mode', f"'metric_model' needs a DA3METRIC model, got {model_name}")
    if cfg.metric_mode == 'nested' and not model_name.startswith('da3nested'):
        raise _bad('metric_mode', f"'nested' needs a DA3NESTED model, got {model_name}")
    if cfg.pose_conditioning and is_anyview and not supports_cameras:
        raise _bad('pose_conditioning', f'this {cfg.backend} model of {model_name} was built '
                   'without camera inputs')


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
            raise _bad(p.name, f'{type(err).__name__}: {err}') from err
        if empty_list and values[p.name] is None:
            values[p.name] = []
    # relative paths mean the folder of the params file that set them (param_paths.py)
    return node_paths(values, node.get_fully_qualified_name())


def declare_depth_params(node) -> DepthConfig:
    """Declare PARAMS on an rclpy node and parse them into DepthConfig (ConfigError names the
    parameter, also one in the params files or `-p` that PARAMS does not have)."""
    unknown_parameters(overrides(node), PARAMS, 'depth node')
    values = declare_params(node, PARAMS)
    return parse_depth_config(values)
