"""Export a DA3 network to ONNX for one fixed input resolution and a dynamic number of views.

    path = export_onnx(build('da3-small').eval(), 'da3-small_280x504.onnx', 280, 504)

The graph (TorchScript exporter, `torch.onnx.export(dynamo=False)`, opset 18 by default):

- input `images` (1, S, 3, H, W) float32, ImageNet-normalised; with `with_cameras=True` also
  `pose_enc` (1, S, 9): the pose encoding of the (normalised) input cameras, computed on the
  host by `da3_ros.model.camera.cameras_to_pose_encoding` (any-view models only);
- any-view models (DualDPT head) output `depth` (1, S, H, W) model units, `depth_conf`
  (1, S, H, W) > 1, `extrinsics` (1, S, 3, 4) T_cam_world OpenCV axes, `intrinsics` (1, S, 3, 3)
  pixels of the network input;
- METRIC/MONO models (DPT head) output `depth` (1, S, H, W) *before* sky fill and `sky`
  (1, S, H, W) sky score (sky where >= 0.3).

Axis 1 of every input and output is the dynamic axis 'views'; everything else is fixed. The
metadata_props of the file record the da3_ros version, model name, height, width, opset and
output names, so that a loader (`onnx_runtime.OnnxModel`) rejects a file built for another
model or resolution.

The position encodings are trace-time constants (`model.positional`), so the graph holds only
standard ops that TensorRT 10 builds without plugins; `graph_lint` checks that (a warning here,
an error in `da3-ros build-engine`).

Known limits:
- one resolution per file: position embeddings and RoPE tables are constants for (H, W);
- batch is fixed to 1 (the view axis carries the frames of one rig);
- the reference view is 'first': choosing it (official strategy for S >= 3) is a host-side step,
  the caller reorders the views before the call and restores the order after;
- not in the graph: the pose encoding of camera inputs (quaternion extraction has boolean
  indexing; it is a host step), the ray -> pose path (RANSAC), the sky fill of METRIC/MONO
  depth, and NESTED models (refused with ConfigError);
- models above ~1.8 GB of weights are written with external data in `<path>.data`.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

import da3_ros
from da3_ros.engine.graph_lint import lint_model
from da3_ros.errors import ConfigError
from da3_ros.model.variants import PATCH_PX, ModelSpec

log = logging.getLogger(__name__)

INPUT_NAME = 'images'
POSE_INPUT_NAME = 'pose_enc'
ANYVIEW_OUTPUTS = ('depth', 'depth_conf', 'extrinsics', 'intrinsics')
MONO_OUTPUTS = ('depth', 'sky')
EXTERNAL_DATA_BYTES = 1_800_000_000   # protobuf's hard limit is 2 GiB per file


class ExportWrapper(nn.Module):
    """forward(images (1, S, 3, H, W)) -> a fixed tuple of output tensors (see module doc)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.anyview = net.spec.head.kind == 'dualdpt'

    def forward(self, images: Tensor, pose_enc: Tensor | None = None) -> tuple[Tensor, ...]:
        # 'first': the official strategies need tokens from inside the network (data-dependent
        # gather); fill_sky (quantile, randint) is a host-side step after the graph.
        out = self.net(images, ref_view_strategy='first', fill_sky=False, pose_enc=pose_enc)
        if self.anyview:
            return out.depth, out.depth_conf, out.extrinsics, out.intrinsics
        return out.depth, out.sky


def output_names(spec: ModelSpec) -> tuple[str, ...]:
    """Output names of the exported graph of a model spec."""
    return ANYVIEW_OUTPUTS if spec.head.kind == 'dualdpt' else MONO_OUTPUTS


def check_export_args(net: nn.Module, height: int, width: int, opset: int,
                      max_views_hint: int, with_cameras: bool = False) -> None:
    """Raise ConfigError for an unsupported network or size; see export_onnx."""
    spec = getattr(net, 'spec', None)
    if not isinstance(spec, ModelSpec):
        raise ConfigError(f'ONNX export supports DA3Net (a ModelSpec); NESTED models are out of '
                          f'scope: export the any-view and metric parts separately '
                          f'(got spec {getattr(spec, "name", spec)!r})')
    for label, value in (('height', height), ('width', width)):
        if not isinstance(value, int) or value <= 0 or value % PATCH_PX:
            raise ConfigError(f'{label} must be a positive multiple of {PATCH_PX}, got {value!r}')
    if not isinstance(opset, int) or opset < 17:
        raise ConfigError(f'opset must be >= 17 (LayerNormalization), got {opset!r}')
    if not isinstance(max_views_hint, int) or max_views_hint < 1:
        raise ConfigError(f'max_views_hint must be a positive int, got {max_views_hint!r}')
    if with_cameras and not spec.has_camera:
        raise ConfigError(f'{spec.name} has no camera encoder; export it without cameras')


def export_onnx(net: nn.Module, path: str | os.PathLike, height: int, width: int,
                opset: int = 18, max_views_hint: int = 2, with_cameras: bool = False,
                progress: Callable[[str], None] | None = None) -> Path:
    """Export `net` (a DA3Net, eval mode, any device) to an ONNX file, written atomically.

    net: DA3Net (not NESTED); traced on CPU in fp32, then moved back to its device and dtype
    path: target .onnx file; its folder must exist
    height, width: input size in pixels, positive multiples of 14, fixed in the file
    opset: ONNX opset, >= 17
    max_views_hint: number of views of the example input used for tracing (>= 1; 2 is enough,
        the view axis is dynamic either way)
    with_cameras: add the `pose_enc` input (camera-conditioned graph; any-view models with a
        camera encoder). A file exported this way always needs cameras.
    progress: optional callback receiving one-line status messages
    returns the path of the written file
    """
    import onnx

    check_export_args(net, height, width, opset, max_views_hint, with_cameras)
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f'output folder {path.parent} does not exist')
    say = progress or log.info
    names = output_names(net.spec)
    params = list(net.parameters())
    device, dtype = params[0].device, params[0].dtype
    n_bytes = sum(p.numel() * 4 for p in params)
    wrapper = ExportWrapper(net).to('cpu', torch.float32).eval()
    example = (torch.zeros(1, max_views_hint, 3, height, width),)
    inputs = (INPUT_NAME,)
    if with_cameras:
        # identity rotation, unit translations, 60 degree field of view: a valid encoding
        pose = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.047, 1.047])
        example += (pose.repeat(1, max_views_hint, 1),)
        inputs += (POSE_INPUT_NAME,)
    dynamic = {name: {1: 'views'} for name in (*inputs, *names)}
    with tempfile.TemporaryDirectory(dir=path.parent, prefix='.onnx-export-') as tmp:
        raw = Path(tmp) / 'raw.onnx'
        say(f'tracing {net.spec.name} at {height}x{width}, opset {opset}')
        start = time.perf_counter()
        try:
            with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                torch.onnx.export(wrapper, example, str(raw), dynamo=False,
                                  input_names=list(inputs), output_names=list(names),
                                  opset_version=opset, dynamic_axes=dynamic,
                                  do_constant_folding=True)
        finally:
            net.to(device, dtype)
        for w in caught:
            log.debug('exporter: %s:%d: %s', w.filename, w.lineno, w.message)
        say(f'exported in {time.perf_counter() - start:.1f} s ({len(caught)} exporter '
            f'warnings, logged at DEBUG); checking')
        model = onnx.load(str(raw))
        meta = {'da3_ros_version': da3_ros.__version__, 'model': net.spec.name,
                'height': str(height), 'width': str(width), 'opset': str(opset),
                'inputs': ','.join(inputs), 'outputs': ','.join(names),
                'dynamic_axes': 'views=1', 'batch': '1', 'ref_view_strategy': 'first'}
        del model.metadata_props[:]
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        staged = Path(tmp) / path.name
        external = n_bytes > EXTERNAL_DATA_BYTES
        data_name = path.name + '.data'
        onnx.save(model, str(staged), save_as_external_data=external,
                  all_tensors_to_one_file=True, location=data_name)
        onnx.checker.check_model(str(staged))
        if problems := lint_model(model, infer_shapes=False):
            log.warning('%s: %d graph lint problems for TensorRT 10: %s', path.name,
                        len(problems), '; '.join(problems[:5]))
        if external:
            os.replace(Path(tmp) / data_name, path.parent / data_name)
        os.replace(staged, path)
    say(f'wrote {path} ({path.stat().st_size / 1e6:.1f} MB)')
    return path
