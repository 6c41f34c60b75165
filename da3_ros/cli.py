"""`da3-ros`: the da3_ros command line (also `python -m da3_ros.cli`).

    da3-ros export-onnx --model depth-anything/DA3-SMALL --image-size 1280x720 --output s.onnx
    da3-ros build-engine --onnx s.onnx --precision fp16 --opt-views 2 --max-views 4
    da3-ros process bag_dir --model depth-anything/DA3-SMALL --output-bag out --storage mcap

One parser builder and one `run(args)` per command. Heavy modules (torch, onnx, tensorrt) are
imported inside the run functions, so `--help` is fast. Progress bars (tqdm) and logs go to
stderr. Known errors end in one stderr line and an exit code (EXIT_CODES), never a traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys

from da3_ros.errors import CheckpointError, ConfigError, InputError
from da3_ros.offline.command import depth_node_param, process_parser

log = logging.getLogger('da3-ros')

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_BAD_INPUT, EXIT_MODEL_FILE, EXIT_NO_TENSORRT = range(6)
EXIT_CODES = f"""exit codes:
  {EXIT_OK}  success
  {EXIT_UNEXPECTED}  unexpected error (traceback logged)
  {EXIT_USAGE}  usage error (bad or missing arguments)
  {EXIT_BAD_INPUT}  bad input or configuration (ConfigError, InputError)
  {EXIT_MODEL_FILE}  checkpoint/model file problem (CheckpointError): missing folder or file,
     unreadable weights, an ONNX file without da3_ros metadata (not from export-onnx)
  {EXIT_NO_TENSORRT}  TensorRT is not available
  130 interrupted (Ctrl-C)
"""


class UsageError(Exception):
    """Arguments that argparse accepts but that do not fit together (exit code 2)."""


def image_size(text: str) -> tuple[int, int]:
    """'WxH' (pixels) -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f'expected WIDTHxHEIGHT, e.g. 1280x720, got {text!r}') from err
    return width, height


def export_parser(sub) -> None:
    p = sub.add_parser('export-onnx', help='export a DA3 checkpoint to ONNX for one resolution',
                       description='Export a DA3 network to ONNX for one fixed input size '
                                   '(H, W multiples of 14) and a dynamic number of views.',
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', required=True,
                   help='Hugging Face id (depth-anything/DA3-SMALL) or local checkpoint folder')
    p.add_argument('--height', type=int, help='network input height, pixels (multiple of 14)')
    p.add_argument('--width', type=int, help='network input width, pixels (multiple of 14)')
    p.add_argument('--image-size', type=image_size, metavar='WxH',
                   help='camera image size; the network size is what preprocessing makes of it')
    p.add_argument('--process-res', type=int, default=depth_node_param('process_res').default,
                   help='with --image-size: target of the boundary resize (default '
                        '%(default)s)')
    method = depth_node_param('process_res_method')
    p.add_argument('--method', default=method.default, choices=method.choices,
                   help='with --image-size: resize method (default %(default)s)')
    p.add_argument('--opset', type=int, default=18, help='ONNX opset, >= 17 (default 18)')
    p.add_argument('--with-cameras', action='store_true',
                   help='add the pose_enc input (camera-conditioned graph)')
    p.add_argument('--output', required=True, help='the .onnx file to write')
    p.set_defaults(run=run_export, parser=p)


def network_size(args) -> tuple[int, int]:
    """(H, W) of the network from --height/--width or --image-size (+ --process-res/--method)."""
    from da3_ros.model.variants import PATCH_PX

    if args.image_size is not None:
        if args.height is not None or args.width is not None:
            raise UsageError('give either --image-size or --height/--width, not both')
        from da3_ros.engine.preprocess import plan_resize
        width, height = args.image_size
        return plan_resize(height, width, args.process_res, args.method).network_hw
    if args.height is None or args.width is None:
        raise UsageError('give --height and --width, or --image-size')
    for label, value in (('height', args.height), ('width', args.width)):
        if value <= 0 or value % PATCH_PX:
            raise ConfigError(f'--{label} must be a positive multiple of {PATCH_PX}, got {value}')
    return args.height, args.width


def run_export(args) -> None:
    from pathlib import Path

    from tqdm import tqdm

    height, width = network_size(args)
    output = Path(args.output)
    if not output.parent.is_dir():
        raise ConfigError(f'output folder {output.parent} does not exist')
    from da3_ros.engine.onnx_export import export_onnx
    from da3_ros.model import checkpoint

    with tqdm(total=4, desc='export-onnx', unit='stage', disable=None) as bar:
        bar.set_postfix_str(f'loading {args.model}')
        net = checkpoint.load(args.model)
        bar.update()

        def stage(message: str) -> None:
            log.debug('%s', message)
            bar.set_postfix_str(message[:60])
            bar.update()

        export_onnx(net, output, height, width, opset=args.opset,
                    with_cameras=args.with_cameras, progress=stage)
    log.info('wrote %s (%s, %dx%d HxW)', output, net.spec.name, height, width)


def build_parser(sub) -> None:
    p = sub.add_parser('build-engine', help='build (or reuse) a TensorRT engine from an ONNX file',
                       description='Build a TensorRT engine for an ONNX file from export-onnx, '
                                   'with a profile over the number of views. Engines are '
                                   'cached by ONNX hash, TensorRT version, GPU, precision and '
                                   'profile; the engine path is printed on stdout.',
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--onnx', required=True, help='ONNX file written by export-onnx')
    p.add_argument('--precision', choices=('fp16', 'fp32'), default='fp16',
                   help='engine precision (default fp16)')
    p.add_argument('--min-views', type=int, default=1, help='fewest views (default 1)')
    p.add_argument('--opt-views', type=int, default=2, help='views to tune for (default 2)')
    p.add_argument('--max-views', type=int, default=8, help='most views (default 8)')
    p.add_argument('--cache-dir', default='engines',
                   help='folder for engines, sidecars, timing cache (default ./engines)')
    p.add_argument('--workspace-gib', type=float,
                   help='builder workspace limit, GiB (default: TensorRT chooses)')
    p.add_argument('--force', action='store_true', help='rebuild even if a cached engine matches')
    p.add_argument('--link', metavar='PATH',
                   help='also make PATH (ending in .engine) a symlink to the engine, replaced '
                        'atomically on every build: a stable model_file for the nodes')
    p.add_argument('--verify', action='store_true',
                   help='run the engine and the ONNX file (ONNX Runtime) on one seeded input, '
                        'log the max relative difference per output, and delete the engine '
                        '(exit code 4) beyond --verify-tolerance')
    p.add_argument('--verify-tolerance', type=float,
                   help='max relative difference (default 1e-3 for fp32, 5e-2 for fp16)')
    p.set_defaults(run=run_build, parser=p)


class BuildBars:
    """One tqdm bar per active TensorRT builder phase, nested by depth."""

    def __init__(self):
        self.bars = {}

    def __call__(self, event) -> None:
        from tqdm import tqdm

        if event.kind == 'start':
            depth = len(self.bars)
            self.bars[event.phase] = tqdm(total=event.num_steps, desc=event.phase[:40],
                                          position=depth, leave=depth == 0, disable=None)
        elif event.phase in self.bars:
            bar = self.bars[event.phase]
            if event.kind == 'step':
                bar.update(event.step - bar.n)
            else:
                bar.close()
                del self.bars[event.phase]


def run_build(args) -> None:
    from da3_ros.engine.engine_cache import link_engine
    from da3_ros.engine.tensorrt_build import ViewProfile, cached_or_build

    if args.link is not None and not args.link.endswith('.engine'):
        raise UsageError(f'--link must end in .engine, got {args.link!r}')
    profile = ViewProfile(args.min_views, args.opt_views, args.max_views)
    entry = cached_or_build(args.onnx, args.cache_dir, args.precision, profile,
                            workspace_gib=args.workspace_gib, force=args.force,
                            progress=BuildBars())
    log.info('%s engine %s', 'built' if entry.built else 'cached', entry.engine_path)
    if args.verify:
        from da3_ros.engine.engine_verify import EngineMismatch, verify_engine

        try:
            diffs = verify_engine(entry.engine_path, args.onnx, args.verify_tolerance)
        except EngineMismatch:
            entry.sidecar_path.unlink(missing_ok=True)      # never reused from the cache
            entry.engine_path.unlink(missing_ok=True)
            raise
        log.info('verified against ONNX Runtime (max relative): %s',
                 ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
    if args.link is not None:
        link_engine(args.link, entry.engine_path)
        log.info('%s -> %s', args.link, entry.engine_path)
    sys.stdout.write(f'{entry.engine_path}\n')


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='da3-ros',
        description='Depth Anything 3 for ROS 2: model export, engines, offline processing.',
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    export_parser(sub)
    build_parser(sub)
    process_parser(sub, EXIT_CODES)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run one command, map errors to EXIT_CODES. Returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)      # exits with 2 on usage errors, 0 on --help
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        stream=sys.stderr, format='da3-ros: %(levelname)s: %(message)s')
    from da3_ros.engine.tensorrt_build import TensorRTUnavailable

    try:
        args.run(args)
    except UsageError as err:
        args.parser.error(str(err))        # exits with 2, with the command's usage line
    except TensorRTUnavailable as err:    # before ConfigError: it is one
        log.error('%s', err)
        return EXIT_NO_TENSORRT
    except (ConfigError, InputError) as err:
        log.error('%s', err)
        return EXIT_BAD_INPUT
    except CheckpointError as err:
        log.error('%s', err)
        return EXIT_MODEL_FILE
    except KeyboardInterrupt:
        log.error('interrupted')
        return 130
    except Exception:
        log.exception('unexpected error')
        return EXIT_UNEXPECTED
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
