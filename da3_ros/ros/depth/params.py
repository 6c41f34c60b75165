"""The depth node's parameters: one declaration table, validated into a frozen DepthConfig.

Every parameter is declared once (PARAMS: name, default, description, range or choices) and read
into DepthConfig by `parse_depth_config`, a pure function of a name -> value dict, so every rule
is unit-testable without rclpy; the declaration machinery is shared with the SLAM node
(ros/params.py). Every error is a ConfigError whose message starts with the parameter's name:
"parameter 'sync.slop_s': ...". config/depth_*.yaml mirror these names.
Parameters marked live (Param.live) take `ros2 param set` on the running node (apply_live,
ros/live_params.py); the others are declared read-only. A key in the params files or `-p` that
the table lacks stops the node naming it (params.unknown_parameters).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from da3_ros.geometry.nav_obstacles import GROUND_FITS, NavConfig
from da3_ros.geometry.points import CloudConfig
from da3_ros.ros.depth.nav_outputs import NAV_OUTPUTS
from da3_ros.ros.params import (
    REQUIRED,
    SYNC_PARAMS,
    Param,
    bad,
    check_precision,
    check_sync,
    check_value,
    declare_table,
    sync_config,
)
from da3_ros.ros.time_sync import seconds_to_ns

METRIC_MODES = ('relative', 'metric_model', 'rig_calibration', 'nested')
RIG_SOURCES = ('none', 'tf', 'yaml')
TRANSPORTS = ('raw', 'compressed')
RESOLUTIONS = ('network', 'input')
OUTPUTS = ('depth', 'confidence', 'camera_info', 'cloud', 'fused_cloud', 'colorized_depth',
           'tf', 'rig_depth')


# The Nav2 outputs (publish.obstacles, publish.scan): geometry.nav_obstacles, docs/nodes.md.
NAV_PARAMS: tuple[Param, ...] = (
    Param('nav.base_frame', 'str', 'base_link',
          'frame of da3/obstacles and da3/scan (the robot base; looked up in TF from the '
          "cameras' world unless it is that frame)"),
    Param('nav.min_height_m', 'float', 0.1,
          'obstacle points are at least this high above the ground; lower points are ground '
          '(the ground band)', range=(-10.0, 100.0), live=True),
    Param('nav.max_height_m', 'float', 1.5,
          'obstacle points are at most this high (robot height); > nav.min_height_m',
          range=(-10.0, 100.0), live=True),
    Param('nav.ground_height_m', 'float', 0.0,
          'z of the ground in nav.base_frame (e.g. -0.1 for a base_link 0.1 m above it)',
          range=(-100.0, 100.0), live=True),
    Param('nav.ground_fit', 'str', 'flat',
          "flat: heights above z = nav.ground_height_m; ransac: above a plane fitted "
          '(RANSAC) to the points within nav.ransac_band_m of it (sloped ground, rig pitch)',
          choices=GROUND_FITS, live=True),
    Param('nav.ransac_band_m', 'float', 0.3,
          'ransac: ground candidates are within this of z = nav.ground_height_m',
          range=(0.0, 10.0), live=True),
    Param('nav.min_confidence', 'float', 0.0,
          'drop pixels with confidence below this (0 keeps all)', range=(0.0, 1e6),
          live=True),
    Param('nav.stride', 'int', 2, 'use every stride-th pixel row and column',
          range=(1, 64), live=True),
    Param('nav.range_min_m', 'float', 0.1,
          'horizontal range below which points are ignored (LaserScan range_min)',
          range=(0.0, 1e3), live=True),
    Param('nav.range_max_m', 'float', 6.0,
          'obstacles farther than this are dropped; LaserScan range_max (free bearings '
          'report inf)', range=(0.0, 1e3), live=True),
    Param('nav.voxel_size_m', 'float', 0.05, 'obstacle cloud voxel edge, 0 = off',
          range=(0.0, 10.0), live=True),
    Param('nav.scan.angle_min_rad', 'float', -math.pi, 'first scan bearing (x forward, CCW)',
          range=(-2 * math.pi, 2 * math.pi), live=True),
    Param('nav.scan.angle_max_rad', 'float', math.pi,
          'last scan bearing; a span of 2 pi is one 360 deg scan (no bin twice)',
          range=(-2 * math.pi, 2 * math.pi), live=True),
    Param('nav.scan.angle_increment_rad', 'float', math.pi / 360, 'scan bin width',
          range=(1e-4, math.pi), live=True),
)


def nav_config(v: dict) -> NavConfig:
    """The NavConfig of checked values; ConfigError naming the parameter when two of them
    contradict each other."""
    if v['nav.max_height_m'] <= v['nav.min_height_m']:
        raise bad('nav.max_height_m', f"{v['nav.max_height_m']} <= nav.min_height_m "
                  f"{v['nav.min_height_m']}")
    if v['nav.range_max_m'] <= v['nav.range_min_m']:
        raise bad('nav.range_max_m', f"{v['nav.range_max_m']} <= nav.range_min_m "
                  f"{v['nav.range_min_m']}")
    if v['nav.scan.angle_max_rad'] <= v['nav.scan.angle_min_rad']:
        raise bad('nav.scan.angle_max_rad', f"{v['nav.scan.angle_max_rad']} <= "
                  f"nav.scan.angle_min_rad {v['nav.scan.angle_min_rad']}")
    return NavConfig(
        min_height_m=v['nav.min_height_m'], max_height_m=v['nav.max_height_m'],
        ground_height_m=v['nav.ground_height_m'], ground_fit=v['nav.ground_fit'],
        ransac_band_m=v['nav.ransac_band_m'], min_confidence=v['nav.min_confidence'] or None,
        stride=v['nav.stride'], range_min_m=v['nav.range_min_m'],
        range_max_m=v['nav.range_max_m'], voxel_size_m=v['nav.voxel_size_m'],
        angle_min=v['nav.scan.angle_min_rad'], angle_max=v['nav.scan.angle_max_rad'],
        angle_increment=v['nav.scan.angle_increment_rad'])


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
    *(Param(f'publish.{out}', 'bool', False, f'publish the Nav2 {out} (da3/{out}, in '
            'nav.base_frame; needs metric depth)', live=True) for out in NAV_OUTPUTS),
    *NAV_PARAMS,
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
    nav: NavConfig = NavConfig()
    nav_base_frame: str = 'base_link'

    @property
    def needs_intrinsics(self) -> bool:
        """CameraInfo K goes to the predictor (camera encoder or metric-model focal scaling)."""
        return self.pose_conditioning or self.metric_mode == 'metric_model'

    @property
    def needs_extrinsics(self) -> bool:
        return self.pose_conditioning


def check_cloud(v: dict) -> None:
    """ConfigError when cloud.max_range_m <= cloud.min_range_m (no point could pass)."""
    if v['cloud.min_range_m'] >= v['cloud.max_range_m']:
        raise bad('cloud.max_range_m', f"{v['cloud.max_range_m']} <= cloud.min_range_m "
                  f"{v['cloud.min_range_m']}")


def _cameras(v: dict) -> tuple[CameraSpec, ...]:
    namespaces, transports = v['cameras'], v['image_transport']
    if not namespaces:
        raise bad('cameras', 'needs at least one camera namespace')
    if len(transports) not in (1, len(namespaces)):
        raise bad('image_transport', f'needs 1 or {len(namespaces)} entries, got '
                  f'{len(transports)}')
    transports = transports * len(namespaces) if len(transports) == 1 else transports
    for topic_param in ('image_topic', 'camera_info_topic'):
        if not v[topic_param].strip('/'):
            raise bad(topic_param, 'must not be empty')
    specs = []
    for ns, transport in zip(namespaces, transports, strict=True):
        name = ns.strip('/').split('/')[-1]
        if not name or ' ' in ns:
            raise bad('cameras', f'{ns!r} is not a namespace')
        image = f"{ns.rstrip('/')}/{v['image_topic'].strip('/')}"
        compressed = transport == 'compressed'
        specs.append(CameraSpec(
            name, ns, image + '/compressed' * compressed,
            f"{ns.rstrip('/')}/{v['camera_info_topic'].strip('/')}", compressed,
            f"{ns.rstrip('/')}/{v['output_namespace'].strip('/')}"))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise bad('cameras', f'camera names (last namespace components) repeat: {names}')
    return tuple(specs)


def _check_modes(v: dict) -> None:
    mode, source = v['metric_mode'], v['rig.source']
    if mode == 'rig_calibration' and source == 'none':
        raise bad('rig.source', "metric_mode 'rig_calibration' needs rig extrinsics: "
                  "set rig.source to 'tf' or 'yaml'")
    if mode == 'rig_calibration' and not v['pose_conditioning']:
        raise bad('pose_conditioning', "metric_mode 'rig_calibration' feeds the rig to the "
                  'camera encoder: set pose_conditioning true')
    if v['pose_conditioning'] and source == 'none':
        raise bad('rig.source', "pose_conditioning needs rig extrinsics: set 'tf' or 'yaml'")
    if source == 'yaml' and not Path(v['rig.calibration_file']).is_file():
        raise bad('rig.calibration_file', f"{v['rig.calibration_file']!r} is not a file "
                  "(needed by rig.source 'yaml')")
    if source != 'none' and not v['rig.base_frame']:
        raise bad('rig.base_frame', 'must name the frame of the rig extrinsics')
    check_sync(v)
    check_cloud(v)
    if mode == 'relative' and any(v[f'publish.{out}'] for out in NAV_OUTPUTS):
        raise bad('metric_mode', "publish.obstacles / publish.scan need metric depth; "
                  "'relative' is in model units (use metric_model, rig_calibration or nested)")
    if any(v[f'publish.{out}'] for out in NAV_OUTPUTS) and not v['nav.base_frame']:
        raise bad('nav.base_frame', 'must name the frame of the Nav2 outputs')
    if v['backend'] != 'torch' and not v['model_file']:
        raise bad('model_file', f"the {v['backend']} backend needs an .onnx / .engine file")
    if v['backend'] == 'torch' and v['model_file']:
        raise bad('model_file', 'the torch backend loads `model`; leave model_file empty')
    if v['verify_onnx'] and v['backend'] != 'tensorrt':
        raise bad('verify_onnx', f"checks a TensorRT engine; backend is {v['backend']}")
    if not v['model']:
        raise bad('model', 'must name a Hugging Face id or a checkpoint folder')
    device = v['device']
    if not (device in ('cpu', 'cuda') or (device.startswith('cuda:')
                                          and device[5:].isdigit())):
        raise bad('device', f"{device!r} is not 'cpu', 'cuda' or 'cuda:N'")
    check_precision(v)
    if v['compile'] and (v['backend'] != 'torch' or not device.startswith('cuda')
                         or v['precision'] not in ('bf16', 'auto')):
        raise bad('compile', 'needs backend torch, device cuda and precision bf16 or auto')


def parse_depth_config(values: dict[str, Any]) -> DepthConfig:
    """Raw parameter values (name -> value; missing names take defaults) -> DepthConfig.

    Raises ConfigError naming the first bad parameter.
    """
    if unknown := sorted(set(values) - set(PARAM_NAMES)):
        raise bad(unknown[0], 'is not a depth node parameter')
    v = {p.name: check_value(p, values.get(p.name, p.default)) for p in PARAMS}
    cameras = _cameras(v)
    _check_modes(v)
    return DepthConfig(
        cameras=cameras, output_namespace=v['output_namespace'].strip('/'), model=v['model'],
        backend=v['backend'], model_file=v['model_file'] or None,
        verify_onnx=v['verify_onnx'] or None, device=v['device'],
        precision=v['precision'], compile=v['compile'],
        check_device_path=v['check_device_path'], process_res=v['process_res'],
        process_res_method=v['process_res_method'],
        metric_mode=v['metric_mode'],
        pose_conditioning=v['pose_conditioning'], rig_source=v['rig.source'],
        rig_base_frame=v['rig.base_frame'],
        rig_calibration_file=v['rig.calibration_file'] or None,
        fixed_frame=v['fixed_frame'], pose_parent_frame=v['pose_parent_frame'],
        pose_frame_suffix=v['pose_frame_suffix'],
        tf_tolerance_ns=seconds_to_ns(v['tf_tolerance_s']),
        output_resolution=v['output_resolution'], **_live_fields(v),
        reliable_inputs=v['qos.reliable_inputs'], reliable_outputs=v['qos.reliable_outputs'],
        diagnostics_period_s=v['diagnostics_period_s'], nav_base_frame=v['nav.base_frame'])


def _live_fields(v: dict) -> dict[str, Any]:
    """DepthConfig's fields of the live parameters (checked values; check_sync on the way)."""
    return dict(
        **asdict(sync_config(v)),
        publish=frozenset(out for out in OUTPUTS + NAV_OUTPUTS if v[f'publish.{out}']),
        cloud=CloudConfig(min_confidence=v['cloud.min_confidence'] or None,
                          min_range_m=v['cloud.min_range_m'],
                          max_range_m=v['cloud.max_range_m'], stride=v['cloud.stride'],
                          voxel_size_m=v['cloud.voxel_size_m']),
        remove_sky=v['cloud.remove_sky'], fused_voxel_size_m=v['fused.voxel_size_m'],
        log_throttle_s=v['log_throttle_s'], nav=nav_config(v))


def apply_live(cfg: DepthConfig, values: dict[str, Any]) -> DepthConfig:
    """The running configuration with new values of the live parameters (`ros2 param set`).

    values: name -> raw value of every live parameter (the current ones and the new ones),
    checked as at start-up (type, range, choices, check_sync, check_cloud); raises ConfigError
    naming the parameter. Gives what parse_depth_config gives for the same values.
    """
    v = {p.name: check_value(p, values[p.name]) for p in PARAMS if p.live}
    check_sync(v)
    check_cloud(v)
    if cfg.metric_mode == 'relative' and any(v[f'publish.{out}'] for out in NAV_OUTPUTS):
        raise bad('metric_mode', "publish.obstacles / publish.scan need metric depth; "
                  "'relative' is in model units")
    return replace(cfg, **_live_fields(v))


def check_model_for_mode(cfg: DepthConfig, model_name: str, is_anyview: bool,
                         supports_cameras: bool) -> None:
    """Raise ConfigError when the loaded model cannot serve metric_mode / pose_conditioning.

    model_name: the variant, e.g. 'da3-small', 'da3metric-large', 'da3nested-giant-large'
    """
    if cfg.metric_mode == 'metric_model' and not model_name.startswith('da3metric'):
        raise bad('metric_mode', f"'metric_model' needs a DA3METRIC model, got {model_name}")
    if cfg.metric_mode == 'nested' and not model_name.startswith('da3nested'):
        raise bad('metric_mode', f"'nested' needs a DA3NESTED model, got {model_name}")
    if cfg.pose_conditioning and is_anyview and not supports_cameras:
        raise bad('pose_conditioning', f'this {cfg.backend} model of {model_name} was built '
                  'without camera inputs')


def declare_depth_params(node) -> DepthConfig:
    """Declare PARAMS on an rclpy node and parse them into DepthConfig (ConfigError names the
    parameter, also one in the params files or `-p` that PARAMS does not have)."""
    return parse_depth_config(declare_table(node, PARAMS, 'depth node'))
