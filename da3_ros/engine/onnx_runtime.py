"""Run a DA3 ONNX file (written by `onnx_export.export_onnx`) with ONNX Runtime.

    model = OnnxModel(path, expect_model='da3-small', expect_hw=(280, 504))
    out = model.run(images)        # images (1, S, 3, H, W) float32 -> {'depth': ..., ...}

onnxruntime is an optional dependency, imported only when a model is opened.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from da3_ros.errors import CheckpointError, ConfigError, InputError

log = logging.getLogger(__name__)

REQUIRED_METADATA = ('model', 'height', 'width', 'opset', 'inputs', 'outputs')
CPU = 'CPUExecutionProvider'


def _select_providers(requested: list[str] | None, available: list[str]) -> list[str]:
    """Requested providers that this onnxruntime build offers, always ending with CPU."""
    if requested is None:
        return [CPU]
    unknown = [p for p in requested if p not in available]
    if unknown:
        log.warning('ONNX Runtime providers %s not available (have %s); skipped',
                    unknown, available)
    chosen = [p for p in requested if p in available and p != CPU]
    return [*chosen, CPU]


class OnnxModel:
    """An InferenceSession over one exported DA3 file, with its metadata checked.

    path: .onnx file from export_onnx
    providers: ONNX Runtime execution providers in priority order, e.g.
        ['CUDAExecutionProvider']; unavailable ones are skipped, CPU is always the fallback
    expect_model: if given, the file's model name (e.g. 'da3-small') must equal it
    expect_hw: if given, the file's (height, width) in pixels must equal it
    """

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None,
                 expect_model: str | None = None, expect_hw: tuple[int, int] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f'ONNX file {self.path} does not exist')
        chosen = _select_providers(providers, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(self.path), providers=chosen)
        except Exception as err:    # onnxruntime raises its own untyped errors
            raise CheckpointError(f'cannot open {self.path} with ONNX Runtime: {err}') from err
        meta = self.session.get_modelmeta().custom_metadata_map
        if missing := [k for k in REQUIRED_METADATA if k not in meta]:
            raise CheckpointError(f'{self.path} lacks da3_ros metadata {missing}; '
                                  f're-export it with da3_ros.engine.onnx_export')
        self.metadata: dict[str, str] = dict(meta)
        self.model_name = meta['model']
        self.height, self.width = int(meta['height']), int(meta['width'])
        self.input_names: tuple[str, ...] = tuple(meta['inputs'].split(','))
        self.output_names: tuple[str, ...] = tuple(meta['outputs'].split(','))
        graph_inputs = tuple(i.name for i in self.session.get_inputs())
        graph_outputs = tuple(o.name for o in self.session.get_outputs())
        if graph_inputs != self.input_names or graph_outputs != self.output_names:
            raise CheckpointError(f'{self.path}: graph inputs/outputs {graph_inputs}/'
                                  f'{graph_outputs} differ from its metadata '
                                  f'{self.input_names}/{self.output_names}')
        self.check(expect_model, expect_hw)
        log.info('opened %s (%s, %dx%d) on %s', self.path, self.model_name, self.height,
                 self.width, self.session.get_providers())

    @property
    def with_cameras(self) -> bool:
        """The graph takes a `pose_enc` input (camera-conditioned export)."""
        return 'pose_enc' in self.input_names

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually uses."""
        return self.session.get_providers()

    def check(self, expect_model: str | None = None,
              expect_hw: tuple[int, int] | None = None) -> None:
        """Raise CheckpointError if the file was built for another model or resolution."""
        if expect_model is not None and expect_model != self.model_name:
            raise CheckpointError(f'{self.path} holds model {self.model_name!r}, '
                                  f'expected {expect_model!r}')
        if expect_hw is not None:
            if len(expect_hw) != 2:
                raise ConfigError(f'expect_hw must be (height, width), got {expect_hw!r}')
            if tuple(int(v) for v in expect_hw) != (self.height, self.width):
                raise CheckpointError(f'{self.path} was exported for {self.height}x{self.width} '
                                      f'(HxW), expected {expect_hw[0]}x{expect_hw[1]}')

    def run(self, images: np.ndarray, pose_enc: np.ndarray | None = None
            ) -> dict[str, np.ndarray]:
        """Run the network.

        images: (1, S, 3, H, W) float32, ImageNet-normalised, S >= 1 views, (H, W) of the file
        pose_enc: (1, S, 9) float32 camera pose encoding; required by (only by) files exported
            with cameras
        returns {name: array} in the file's output order; any-view models: depth (1, S, H, W),
            depth_conf (1, S, H, W), extrinsics (1, S, 3, 4) T_cam_world, intrinsics
            (1, S, 3, 3) pixels; METRIC/MONO: depth (1, S, H, W) before sky fill, sky (1, S, H, W)
        """
        if not isinstance(images, np.ndarray):
            raise InputError(f'images must be a numpy array, got {type(images).__name__}')
        if images.dtype != np.float32:
            raise InputError(f'images must be float32, got {images.dtype}')
        want = (1, 'S', 3, self.height, self.width)
        shape = images.shape
        if (len(shape) != 5 or shape[0] != 1 or shape[1] < 1 or shape[2] != 3
                or shape[3:] != (self.height, self.width)):
            raise InputError(f'images must be {want} for {self.path.name}, got {shape}')
        feeds = {'images': np.ascontiguousarray(images)}
        if self.with_cameras != (pose_enc is not None):
            raise InputError(f'{self.path.name} was exported '
                             f'{"with" if self.with_cameras else "without"} camera input; '
                             f'pose_enc {"missing" if pose_enc is None else "not accepted"}')
        if pose_enc is not None:
            if pose_enc.shape != (1, shape[1], 9) or pose_enc.dtype != np.float32:
                raise InputError(f'pose_enc must be (1, {shape[1]}, 9) float32, got '
                                 f'{pose_enc.shape} {pose_enc.dtype}')
            feeds['pose_enc'] = np.ascontiguousarray(pose_enc)
        outputs = self.session.run(list(self.output_names), feeds)
        return dict(zip(self.output_names, outputs, strict=True))
