"""The SLAM node's parameters: one declaration table, validated into a frozen SlamNodeConfig.

Same scheme as depth_params (shared machinery: ros/params.py): every parameter is declared once
(SLAM_PARAMS), parsed by a pure function of a name -> value dict (`parse_slam_config`) into
typed fields (durations in integer ns), and every error is a ConfigError that starts with the
parameter's name. Live parameters (Param.live: sync.*, publish.*,
log_throttle_s) take `ros2 param set` (apply_live_slam); the others are read-only.

Test-only parameters are not in SLAM_PARAMS. The simulated predictor, which stands in for the
network in the node tests, has its own table, SIMULATION_PARAMS (`test.simulated_*`), declared
only by SlamNode(simulated=True), i.e. by test/nodes/simulated_slam_node.py; there is no
switch in the production node, so `ros2 run da3_ros slam_node` refuses those keys as unknown
like any other.

Why in the ROS shell though it imports nothing of ROS: it is the SLAM node's ROS parameter
interface (names, read-only vs live, the frames it publishes in); the core's own settings
are da3_ros/slam/ dataclasses, which parse_slam_config fills.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from da3_ros.errors import ConfigError
from da3_ros.ros import params
from da3_ros.ros.params import SYNC_PARAMS, Param, SyncConfig, bad, check_value
from da3_ros.ros.time_sync import seconds_to_ns
from da3_ros.slam.chunking import ChunkConfig
from da3_ros.slam.loops import LoopConfig
from da3_ros.slam.map import MapConfig
from da3_ros.slam.system import SlamConfig

INPUT_MODES = ('cameras', 'rig_depth')
SIM_PROFILES = ('nominal', 'noiseless', 'hard')

SLAM_PARAMS: tuple[Param, ...] = (
    Param('input_mode', 'str', 'cameras',
          "'cameras': subscribe the images and run the network per chunk; 'rig_depth': use the "
          "depth node's synchronised da3_ros/RigDepth (no network here, no loop retrieval)",
          choices=INPUT_MODES),
    Param('cameras', 'str[]', [],
          'input_mode cameras: camera namespaces in rig order; image <ns>/<image_topic>, '
          'the first camera is the tracked one'),
    Param('image_topic', 'str', 'image_raw', 'image topic inside each camera namespace'),
    Param('image_transport', 'str', 'raw', "'raw' (Image) or 'compressed' (CompressedImage)",
          choices=('raw', 'compressed')),
    Param('camera_info_topic', 'str', 'camera_info', 'CameraInfo topic in each namespace'),
    Param('use_camera_info', 'bool', False,
          'give CameraInfo K to the network (frames wait until every camera has one)'),
    Param('rig_depth_topic', 'str', '/da3/rig_depth', 'input_mode rig_depth: RigDepth topic'),
    *SYNC_PARAMS,
    Param('frame_stride', 'int', 1, 'use every n-th synchronised set as a SLAM frame',
          range=(1, 1000)),
    Param('queue_size', 'int', 1000,
          'frames waiting for the SLAM worker; the oldest is dropped when full',
          range=(1, 100000)),
    Param('model', 'str', 'depth-anything/DA3-LARGE', 'Hugging Face id or checkpoint folder'),
    Param('backend', 'str', 'torch', 'inference backend (loops need the torch backend)',
          choices=('torch', 'onnxruntime', 'tensorrt')),
    Param('model_file', 'str', '', '.onnx / .engine file for onnxruntime / tensorrt'),
    Param('device', 'str', 'cuda', "'cpu', 'cuda' or 'cuda:N'"),
    Param('precision', 'str', 'auto',
          'torch precision; auto: bf16 on GPUs that have it, fp16 on older GPUs, fp32 on CPU',
          choices=('auto', 'fp32', 'bf16', 'fp16')),
    Param('process_res', 'int', 504, 'network resolution (longest side, pixels)',
          range=(14, 4096)),
    Param('chunk.size', 'int', 120, 'frames per chunk (one network call)', range=(2, 10000)),
    Param('chunk.overlap', 'int', 60, 'frames shared by consecutive chunks', range=(1, 9999)),
    Param('loops.enabled', 'bool', True, 'detect, verify and add loop closures'),
    Param('loops.exclude_frames', 'int', 240, 'no loop candidates among the newest n frames',
          range=(1, 1000000)),
    Param('loops.nms_frames', 'int', 25, 'suppression radius around a kept loop pair, frames',
          range=(0, 1000000)),
    Param('loops.window', 'int', 20, 'frames per side of a loop verification chunk',
          range=(2, 1000)),
    Param('loops.keyframe_every', 'int', 1,
          'every k-th frame enters the loop database and keeps its images (JPEG) for loop '
          'verification; raise it for large rigs to bound memory', range=(1, 1000)),
    Param('map.voxel_size_m', 'float', 0.5, 'global map voxel edge (map units)',
          range=(1e-3, 100.0)),
    Param('map.points_per_frame', 'int', 256, 'depth samples per view added to the map',
          range=(1, 100000)),
    Param('map.min_hits', 'int', 2,
          'voxels hit fewer times are dropped after 2 chunks without a hit (1 = keep all)',
          range=(1, 1000000)),
    Param('map.save_path', 'str', '',
          'folder written by ~/save_map (atomically: a kill never leaves a broken map)'),
    Param('map.load_path', 'str', '',
          "a saved map folder published once on ~/prior_map and ~/prior_path ('' = none)"),
    Param('frames.map', 'str', 'map', 'the map frame (parent of the published TF)'),
    Param('frames.odom', 'str', 'odom',
          "odometry frame: map->odom is published while odom->base exists in TF ('' = never)"),
    Param('frames.base', 'str', '',
          "tracked body frame; '' = the first camera's frame (map->it without odometry)"),
    Param('tf_tolerance_s', 'float', 0.1, 'largest stamp gap for odom->base lookups, s',
          range=(0.0, 10.0)),
    Param('tf_wait_s', 'float', 0.5,
          'a frame waits for its base / odom transforms up to this much stamp time, s',
          range=(0.0, 60.0)),
    Param('publish.map_period_s', 'float', 2.0,
          'the global map is published at most this often, s (0 = after every chunk)',
          range=(0.0, 3600.0), live=True),
    Param('publish.map_voxel_size_m', 'float', 0.0,
          'extra voxel averaging of the published map only (0 = the map as is)',
          range=(0.0, 100.0), live=True),
    Param('publish.tf_period_s', 'float', 0.1,
          'republish the newest map TF with the current time this often (0 = per chunk only)',
          range=(0.0, 60.0), live=True),
    Param('qos.reliable_inputs', 'bool', False, 'reliable instead of sensor-data inputs'),
    Param('diagnostics_period_s', 'float', 1.0, '/diagnostics period, s', range=(0.01, 60.0)),
    Param('log_throttle_s', 'float', 5.0, 'one log line per drop cause per this period, s',
          range=(0.0, 3600.0), live=True),
)
SLAM_PARAM_NAMES = tuple(p.name for p in SLAM_PARAMS)

# The simulated predictor of the node tests (SlamNode(simulated=True) only; see the docstring).
SIMULATION_PARAMS: tuple[Param, ...] = (
    Param('test.simulated_trajectory', 'str', '',
          "ground truth file, TUM (8 columns) or KITTI (12); "
          'frame i of the stream is rendered at its pose i'),
    Param('test.simulated_profile', 'str', 'nominal', 'simulated error profile',
          choices=SIM_PROFILES),
    Param('test.simulated_seed', 'int', 0, 'seed of the simulated errors',
          range=(0, 2**31 - 1)),
    Param('test.simulated_image_hw', 'str[]', ['12', '40'],
          '[height, width] of the simulated depth maps'),
    Param('test.simulated_camera_yaw_deg', 'str[]', ['0'],
          'yaw of each simulated rig camera relative to camera 0, degrees'),
)


@dataclass(frozen=True)
class SimulationConfig:
    """The simulated predictor (tests): GT file, profile, seed, depth size, camera yaws."""

    trajectory: Path
    profile: str
    seed: int
    image_hw: tuple[int, int]
    camera_yaw_deg: tuple[float, ...]


@dataclass(frozen=True)
class SlamNodeConfig:
    """Validated node configuration (durations: seconds -> integer ns; '' paths -> None)."""

    input_mode: str                  # 'cameras' or 'rig_depth'
    cameras: tuple[str, ...]         # camera namespaces (input_mode cameras)
    topics: tuple[str, ...]          # image topics (cameras) or the RigDepth topic
    info_topics: tuple[str, ...]
    compressed: bool                 # image_transport 'compressed'
    use_camera_info: bool
    sync: SyncConfig
    frame_stride: int
    queue_size: int
    model: str
    backend: str
    model_file: str | None
    device: str
    precision: str
    process_res: int
    map_save_path: str | None
    map_load_path: str | None
    map_frame: str
    odom_frame: str                  # '' = no odometry
    base_frame: str                  # '' = the first camera's frame
    tf_tolerance_ns: int
    tf_wait_ns: int
    map_period_s: float
    map_voxel_size_m: float          # publish.map_voxel_size_m (0 = the map as is)
    tf_period_s: float
    reliable_inputs: bool
    diagnostics_period_s: float
    log_throttle_s: float
    simulation: SimulationConfig | None
    slam: SlamConfig


def _floats(name: str, items: list[str], count: int | None = None) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in items)
    except ValueError as err:
        raise bad(name, f'expected numbers, got {items}') from err
    if count is not None and len(values) != count:
        raise bad(name, f'expected {count} values, got {len(values)}')
    return values


def _simulated(v: dict) -> bool:
    """The simulated predictor's table was declared (SlamNode(simulated=True))."""
    return SIMULATION_PARAMS[0].name in v


def _simulation(v: dict, num_cameras: int) -> SimulationConfig | None:
    if not _simulated(v):
        return None
    path = Path(v['test.simulated_trajectory'])
    if not path.is_file():
        raise bad('test.simulated_trajectory', f"{str(path)!r} is not a file (the simulated "
                  "predictor needs a ground-truth trajectory)")
    hw = _floats('test.simulated_image_hw', v['test.simulated_image_hw'], 2)
    if min(hw) < 2 or any(h != int(h) for h in hw):
        raise bad('test.simulated_image_hw', f'needs two integers >= 2, got {hw}')
    yaws = _floats('test.simulated_camera_yaw_deg', v['test.simulated_camera_yaw_deg'],
                   num_cameras)
    return SimulationConfig(path, v['test.simulated_profile'], v['test.simulated_seed'],
                            (int(hw[0]), int(hw[1])), yaws)


def _topics(v: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if v['input_mode'] == 'rig_depth':
        if not v['rig_depth_topic']:
            raise bad('rig_depth_topic', 'must not be empty')
        if _simulated(v) or v['use_camera_info']:
            raise bad('input_mode' if _simulated(v) else 'use_camera_info',
                      "input_mode 'rig_depth' takes depth and poses from RigDepth; the "
                       'predictor options apply to input_mode cameras only')
        return (v['rig_depth_topic'],), ()
    namespaces = [ns.rstrip('/') for ns in v['cameras']]
    if not namespaces or not all(ns.strip('/') for ns in namespaces):
        raise bad('cameras', "input_mode 'cameras' needs at least one camera namespace")
    suffix = '/compressed' if v['image_transport'] == 'compressed' else ''
    return (tuple(f"{ns}/{v['image_topic'].strip('/')}{suffix}" for ns in namespaces),
            tuple(f"{ns}/{v['camera_info_topic'].strip('/')}" for ns in namespaces))


def _check(v: dict) -> None:
    if not v['chunk.overlap'] < v['chunk.size']:
        raise bad('chunk.overlap', f"{v['chunk.overlap']} must be < chunk.size "
                  f"{v['chunk.size']}")
    if not v['frames.map']:
        raise bad('frames.map', 'must name the map frame')
    for name in ('frames.odom', 'frames.base'):
        if v[name] and v[name] == v['frames.map']:
            raise bad(name, f"equals frames.map {v['frames.map']!r}")
    params.check_sync(v)
    if not _simulated(v) and v['input_mode'] == 'cameras':
        if v['backend'] != 'torch' and not v['model_file']:
            raise bad('model_file', f"the {v['backend']} backend needs a model file")
        if v['backend'] == 'torch' and v['model_file']:
            raise bad('model_file', 'the torch backend loads `model`; leave it empty')
        params.check_precision(v)
    if v['map.load_path'] and not (Path(v['map.load_path']) / 'metadata.json').is_file():
        raise bad('map.load_path', f"{v['map.load_path']!r} is not a saved map folder")


def parse_slam_config(values: dict[str, Any], simulated: bool = False) -> SlamNodeConfig:
    """Raw parameter values (missing names take defaults) -> SlamNodeConfig; raises
    ConfigError naming the first bad parameter. simulated: the node tests' simulated predictor
    stands in for the network, configured by SIMULATION_PARAMS."""
    table = SLAM_PARAMS + (SIMULATION_PARAMS if simulated else ())
    if unknown := sorted(set(values) - {p.name for p in table}):
        raise bad(unknown[0], 'is not a slam node parameter')
    v = {p.name: check_value(p, values.get(p.name, p.default)) for p in table}
    topics, info_topics = _topics(v)
    _check(v)
    try:
        slam = SlamConfig(
            chunk=ChunkConfig(v['chunk.size'], v['chunk.overlap']),
            loop=LoopConfig(exclude_frames=v['loops.exclude_frames'], window=v['loops.window'],
                            nms_frames=v['loops.nms_frames'],
                            keyframe_every=v['loops.keyframe_every']),
            map=MapConfig(voxel_m=v['map.voxel_size_m'],
                          points_per_frame=v['map.points_per_frame'],
                          min_hits=v['map.min_hits']),
            loops_enabled=v['loops.enabled'] and v['input_mode'] == 'cameras')
    except ConfigError as err:
        raise bad('chunk.size', str(err)) from err
    return SlamNodeConfig(
        input_mode=v['input_mode'], cameras=tuple(v['cameras']), topics=topics,
        info_topics=info_topics, compressed=v['image_transport'] == 'compressed',
        use_camera_info=v['use_camera_info'],
        frame_stride=v['frame_stride'], queue_size=v['queue_size'], model=v['model'],
        backend=v['backend'], model_file=v['model_file'] or None, device=v['device'],
        precision=v['precision'], process_res=v['process_res'],
        map_save_path=v['map.save_path'] or None, map_load_path=v['map.load_path'] or None,
        map_frame=v['frames.map'], odom_frame=v['frames.odom'], base_frame=v['frames.base'],
        tf_tolerance_ns=seconds_to_ns(v['tf_tolerance_s']),
        tf_wait_ns=seconds_to_ns(v['tf_wait_s']), **_live_fields(v),
        reliable_inputs=v['qos.reliable_inputs'],
        diagnostics_period_s=v['diagnostics_period_s'],
        simulation=_simulation(v, max(len(topics), 1)), slam=slam)


def _live_fields(v: dict) -> dict[str, Any]:
    """SlamNodeConfig's fields of the live parameters (checked values)."""
    return dict(sync=params.sync_config(v), map_period_s=v['publish.map_period_s'],
                map_voxel_size_m=v['publish.map_voxel_size_m'],
                tf_period_s=v['publish.tf_period_s'], log_throttle_s=v['log_throttle_s'])


def apply_live_slam(cfg: SlamNodeConfig, values: dict[str, Any]) -> SlamNodeConfig:
    """The running configuration with new values of the live parameters (`ros2 param set`).

    values: name -> raw value of every live parameter, checked as at start-up (type, range,
    check_sync); raises ConfigError naming the parameter.
    """
    v = {p.name: check_value(p, values[p.name]) for p in SLAM_PARAMS if p.live}
    return replace(cfg, **_live_fields(v))


def declare_slam_params(node, simulated: bool = False) -> SlamNodeConfig:
    """Declare SLAM_PARAMS (and SIMULATION_PARAMS when simulated) on an rclpy node
    (descriptions, ranges, read-only unless live) and parse them; ConfigError names the
    parameter, also one in the params files or `-p` that the tables do not have."""
    table = SLAM_PARAMS + (SIMULATION_PARAMS if simulated else ())
    return parse_slam_config(params.declare_table(node, table, 'slam node'), simulated)
