"""`da3-ros process`: argument parser and run function (registered by da3_ros/cli.py).

    da3-ros process BAG_DIR --output-bag out_bag --storage mcap --model depth-anything/DA3-SMALL
    da3-ros process images/ --npy-dir depth/ --ply-dir clouds/ --fps 10
    da3-ros process clip.mp4 --output-bag out_bag --stride 5
    da3-ros process BAG_DIR --ply-dir clouds/ --world-frame world --global-voxel 0.05
    da3-ros process BAG_DIR --slam map_dir/ --output-bag out_bag --chunk-size 60

Only argparse is imported at module level, so `da3-ros --help` stays fast. Options that mirror a
node parameter take its default and choices from the node's table (depth_node_param), and the
SLAM options from the slam node's (slam_chunks): none is repeated here.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from da3_ros.errors import ConfigError, InputError

log = logging.getLogger('da3-ros')


def depth_node_param(name: str):
    """The depth node's declaration (Param) of parameter `name`: its default and choices."""
    from da3_ros.ros.depth.params import PARAMS
    from da3_ros.ros.params import by_name

    return by_name(PARAMS, name)


def default_outputs() -> str:
    """The depth outputs the depth node publishes by default, comma-separated."""
    from da3_ros.ros.depth.params import OUTPUTS

    return ','.join(o for o in OUTPUTS if depth_node_param(f'publish.{o}').default)


def _input_args(p) -> None:
    p.add_argument('input', help='rosbag2 folder (sqlite3 or MCAP), image folder or video file')
    p.add_argument('--cameras', nargs='+', metavar='TOPIC',
                   help='bag image topics in rig order (default: every Image/CompressedImage '
                        'topic with a camera_info topic beside it, sorted)')
    p.add_argument('--slop', type=float, default=depth_node_param('sync.slop_s').default,
                   help='largest stamp difference inside one camera set, s (default '
                        '%(default)s)')
    p.add_argument('--max-wait', type=float, default=depth_node_param('sync.max_wait_s').default,
                   help='an image waiting longer than this (stamp time, s) for its set is '
                        'dropped (default %(default)s)')
    p.add_argument('--fps', type=float, default=10.0,
                   help='image folder: stamp rate of the synthetic stamps (default 10)')
    p.add_argument('--stride', type=int, default=1,
                   help='image folder / video: use every N-th image (default 1)')
    p.add_argument('--frame-id', default='camera_optical_frame',
                   help='image folder / video: optical frame id of the camera')
    p.add_argument('--camera-info-intrinsics', action='store_true',
                   help="give the bag's CameraInfo K to the model (DA3METRIC: metres)")


def _model_args(p) -> None:
    p.add_argument('--model', required=True,
                   help='Hugging Face id or checkpoint folder (torch); expected variant for '
                        '--backend onnxruntime/tensorrt')
    _node_option(p, '--backend', 'backend')
    p.add_argument('--model-file', help='.onnx / .engine file for onnxruntime / tensorrt')
    _node_option(p, '--device', 'device', help="'cpu', 'cuda' or 'cuda:N' (default %(default)s)")
    _node_option(p, '--precision', 'precision',
                 help='torch precision (auto: bf16 / fp16 by GPU, fp32 on the CPU)')
    _node_option(p, '--process-res', 'process_res', type=int,
                 help='network processing resolution, longest side px (default %(default)s)')
    _node_option(p, '--process-res-method', 'process_res_method')


def _node_option(p, option: str, name: str, **kwargs) -> None:
    """An option with the default and choices of the depth node's parameter `name`."""
    param = depth_node_param(name)
    p.add_argument(option, default=param.default, choices=param.choices or None, **kwargs)


def _output_args(p) -> None:
    p.add_argument('--output-bag', help='rosbag2 folder to write (must not exist)')
    p.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                   help='storage of --output-bag (default mcap, as Jazzy)')
    p.add_argument('--outputs',
                   help='comma-separated depth-node outputs written to the bag (default '
                        f'{default_outputs()}; colorized_depth also exists; with --slam the '
                        'default is none, and naming outputs adds a per-set forward to the '
                        "SLAM's per-chunk one)")
    p.add_argument('--npy-dir', help='folder to write depth .npy per camera and set + index.csv')
    p.add_argument('--ply-dir', help='folder to write the fused cloud PLY of every set')
    p.add_argument('--world-frame',
                   help='with --ply-dir: instead one global PLY in this frame, placing each set '
                        "with the bag's /tf + /tf_static")
    p.add_argument('--global-voxel', type=float, default=0.05,
                   help='voxel edge of the global PLY, cloud units (default 0.05)')
    _node_option(p, '--output-resolution', 'output_resolution')
    _node_option(p, '--cloud-stride', 'cloud.stride', type=int,
                 help='use every N-th pixel row/column')
    _node_option(p, '--min-confidence', 'cloud.min_confidence', type=float,
                 help='drop cloud points below this confidence (default %(default)s: keep all)')
    _node_option(p, '--max-range', 'cloud.max_range_m', type=float,
                 help='drop farther cloud points (default %(default)s)')
    _node_option(p, '--fused-voxel', 'fused.voxel_size_m', type=float,
                 help='voxel edge of the fused rig cloud, 0 = off')
    p.add_argument('--overwrite', action='store_true', help='replace existing outputs')


def _slam_args(p) -> None:
    g = p.add_argument_group(
        'SLAM', 'Chunked SLAM over the camera sets (camera 0 tracked), configured as the slam '
                'node (da3_ros/ros/slam/params.py). The network runs once per chunk of sets; '
                'depth outputs (--npy-dir, --ply-dir, --outputs) add one forward per set. '
                'With --output-bag the bag also gets /tf map -> base at every set, '
                '/da3_slam/path and /da3_slam/map; base is the root of camera 0\'s frame in '
                "the input's /tf_static (or the camera frame).")
    g.add_argument('--slam', metavar='DIR',
                   help='run the SLAM and write its map folder: map.ply, trajectory.tum, '
                        'trajectory.kitti, metadata.json, ros.json, trajectory_map.tum '
                        '(loadable by the slam node, map.load_path)')
    g.add_argument('--chunk-size', type=int,
                   help="frames per chunk, one network call each (default: the slam node's "
                        'chunk.size)')
    g.add_argument('--chunk-overlap', type=int,
                   help="frames shared by consecutive chunks (default: the slam node's "
                        'chunk.overlap)')


def process_parser(sub, epilog: str) -> None:
    p = sub.add_parser('process', help='run DA3 over a rosbag2, image folder or video',
                       description='Run Depth Anything 3 offline over synchronised camera sets '
                                   'and write what the depth node would publish to a new '
                                   'rosbag2 and/or depth .npy and PLY files, and/or run the '
                                   'SLAM (--slam) for a map and trajectory. Outputs appear '
                                   'only when the whole run succeeds.',
                       epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    _input_args(p)
    _model_args(p)
    _output_args(p)
    _slam_args(p)
    p.set_defaults(run=run_process, parser=p)


def open_source(args):
    """The RigSource for args.input: bag folder (metadata.yaml), image folder or video."""
    from da3_ros.offline.rig_frame import CameraSource

    path = Path(args.input)
    if not path.exists():
        raise InputError(f'input {path} does not exist')
    if args.stride < 1 or args.fps <= 0:
        raise ConfigError(f'--stride must be >= 1 and --fps > 0, got {args.stride}, {args.fps}')
    from da3_ros.ros.time_sync import seconds_to_ns

    if path.is_file() and (path.parent / 'metadata.yaml').is_file():
        path = path.parent  # the .mcap / .db3 file of a bag: open the bag
    if (path / 'metadata.yaml').is_file():
        from da3_ros.offline.bag_input import BagSource
        return BagSource(path, args.cameras, seconds_to_ns(args.slop),
                         seconds_to_ns(args.max_wait))
    if args.cameras:
        raise ConfigError('--cameras applies to rosbag2 input only')
    camera = CameraSource('camera', '/camera')
    if path.is_dir():
        from da3_ros.offline.folder_input import FolderSource
        return FolderSource(path, camera, args.frame_id, seconds_to_ns(1 / args.fps),
                            stride=args.stride)
    from da3_ros.offline.video_input import VideoSource
    return VideoSource(path, camera, args.frame_id, stride=args.stride)


def make_options(args):
    """ProcessOptions and the bag's publish set from the arguments."""
    from da3_ros.geometry.points import CloudConfig
    from da3_ros.offline.process import ProcessOptions
    from da3_ros.ros.depth.outputs import OutputOptions
    from da3_ros.ros.depth.params import OUTPUTS

    text = args.outputs if args.outputs is not None else '' if args.slam else default_outputs()
    publish = frozenset(o.strip() for o in text.split(',') if o.strip())
    if unknown := sorted(publish - set(OUTPUTS)):
        raise ConfigError(f'--outputs: unknown {unknown}; known: {list(OUTPUTS)}')
    build = publish | ({'fused_cloud'} if args.ply_dir else set())
    cloud = CloudConfig(min_confidence=args.min_confidence or None, max_range_m=args.max_range,
                        stride=args.cloud_stride)
    outputs = OutputOptions(build, args.output_resolution, cloud,
                            fused_voxel_size_m=args.fused_voxel)
    return ProcessOptions(outputs, args.camera_info_intrinsics), publish


def make_predictor(args):
    from da3_ros.engine.factory import make_predictor as factory

    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise ConfigError(f'--device {args.device} but CUDA is not available (use cpu)')
    return factory(args.model, args.backend, args.device, args.precision, args.model_file,
                   process_res=args.process_res, method=args.process_res_method,
                   return_descriptors=bool(args.slam) and args.backend == 'torch')


def stage_outputs(args, staging) -> dict[str, Path]:
    """Temporary paths of the requested outputs (checked: parent exists, final is free)."""
    wanted = {'slam': args.slam, 'bag': args.output_bag, 'npy': args.npy_dir,
              'ply': args.ply_dir}
    return {key: staging.stage(path) for key, path in wanted.items() if path}


def make_consumers(args, source, paths: dict[str, Path], publish, predictor,
                   chunks: tuple[int, int] | None) -> list:
    """The writers for the staged outputs, in the order slam, bag, npy, ply (the SLAM stage
    writes into the bag when it closes, so it closes first). chunks: slam_chunks(args)."""
    from da3_ros.offline import file_output

    consumers, bag = [], None
    if 'bag' in paths:
        from da3_ros.offline.bag_output import BagWriter
        bag = BagWriter(paths['bag'], args.storage, source.cameras, publish,
                        source.passthrough)
    if 'slam' in paths:
        from da3_ros.offline.slam_stage import SlamStage
        consumers.append(SlamStage(paths['slam'], predictor, source.cameras,
                                   source.passthrough, *chunks, args.camera_info_intrinsics,
                                   bag))
    if bag is not None:
        consumers.append(bag)
    if 'npy' in paths:
        consumers.append(file_output.NpyDepthWriter(paths['npy'], source.cameras,
                                                    args.output_resolution))
    if 'ply' in paths and args.world_frame:
        paths['ply'].mkdir()
        consumers.append(file_output.GlobalPlyWriter(paths['ply'] / 'global.ply',
                                                     args.world_frame, source.world_pose,
                                                     args.global_voxel))
    elif 'ply' in paths:
        consumers.append(file_output.SetPlyWriter(paths['ply']))
    return consumers


def slam_chunks(args) -> tuple[int, int]:
    """(chunk size, overlap) in frames: --chunk-size / --chunk-overlap, else the slam node's
    chunk.size / chunk.overlap defaults; raises ConfigError unless 0 < overlap < size."""
    from da3_ros.ros.slam.params import SLAM_PARAMS

    defaults = {p.name: p.default for p in SLAM_PARAMS}
    size = args.chunk_size if args.chunk_size is not None else defaults['chunk.size']
    overlap = args.chunk_overlap if args.chunk_overlap is not None else defaults['chunk.overlap']
    if not 0 < overlap < size:
        raise ConfigError(f'need 0 < --chunk-overlap < --chunk-size, got {overlap} and {size}')
    return size, overlap


def check_slam_model(model_name: str) -> None:
    """The SLAM chains the network's camera poses: depth-only variants cannot drive it."""
    from da3_ros.model.variants import get_spec

    spec = get_spec(model_name)
    if not getattr(spec, 'anyview', spec).has_camera:   # a NESTED model: its any-view part
        raise ConfigError(f'--slam needs a model that predicts camera poses; {model_name} '
                          'predicts depth only (use DA3-SMALL/BASE/LARGE/GIANT or NESTED)')


def plan(args):
    """Usage checks (exit 2) -> (ProcessOptions, bag publish set, whether a per-set forward
    runs: only for depth outputs; --slam alone runs the network per chunk only)."""
    if not (args.output_bag or args.npy_dir or args.ply_dir or args.slam):
        args.parser.error('give at least one of --output-bag, --npy-dir, --ply-dir, --slam')
    if args.world_frame and not args.ply_dir:
        args.parser.error('--world-frame needs --ply-dir')
    if not args.slam and (args.chunk_size is not None or args.chunk_overlap is not None):
        args.parser.error('--chunk-size and --chunk-overlap need --slam')
    options, publish = make_options(args)
    per_set = bool(args.npy_dir or args.ply_dir or (args.output_bag and publish))
    if not (per_set or args.slam):
        args.parser.error('--outputs is empty: nothing to write into --output-bag')
    return options, publish, per_set


def run_process(args) -> None:
    """Validate arguments and input, stage outputs, load the model, run, commit."""
    from dataclasses import replace

    from tqdm import tqdm

    from da3_ros.offline.process import run_sets
    from da3_ros.offline.staging import Staging

    options, publish, per_set = plan(args)
    chunks = slam_chunks(args) if args.slam else None
    source = open_source(args)  # bad input fails here, before the model is loaded
    try:
        with Staging(args.overwrite) as staging:
            paths = stage_outputs(args, staging)
            predictor = make_predictor(args)
            if args.slam:
                check_slam_model(predictor.backend.model_name)
            options = replace(options, outputs=replace(
                options.outputs, model_name=predictor.backend.model_name))
            consumers = make_consumers(args, source, paths, publish, predictor, chunks)
            with tqdm(total=source.expected_sets, desc='process', unit='set',
                      disable=None) as bar:
                count = run_sets(source, predictor if per_set else None, options, consumers,
                                 bar.update)
            staging.commit()
    finally:
        source.close()
    skipped = ', '.join(f'{k} {v}' for k, v in sorted(source.skipped.items())) or 'none'
    log.info('processed %d sets of %d cameras; skipped: %s', count, len(source.cameras),
             skipped)
    log.info('wrote %s', ', '.join(str(p) for p in (args.slam, args.output_bag, args.npy_dir,
                                                      args.ply_dir) if p))
