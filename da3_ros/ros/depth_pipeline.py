"""One synchronised camera set -> the depth node's messages, on the GPU when it can be.

The device path (backend on CUDA, network-resolution outputs, no per-camera voxels, views of
one size): uint8 images are uploaded once, preprocessed, run through the network and packed
into message arrays on the GPU, each array copied to the host once, while the packing goes on
(engine.device_outputs). Otherwise the
host path: Predictor.predict (numpy) and depth_outputs.build_outputs. Both give the same
messages (test/ros_core/test_device_path_outputs.py).
"""
from __future__ import annotations

import time

import numpy as np

from da3_ros.engine.device_outputs import DeviceOutputs
from da3_ros.errors import ConfigError
from da3_ros.ros.depth_outputs import (
    CameraInput,
    Frames,
    OutputOptions,
    RigOutputs,
    build_outputs,
)
from da3_ros.ros.depth_outputs_device import build_outputs_on_device, device_path_supported


class DepthPipeline:
    """predictor: engine.predictor.Predictor; opts: OutputOptions
    on_device: force the device path on (any backend device, e.g. CPU tensors in tests) or
        off; None = on when the backend runs on CUDA and the outputs allow it
    """

    def __init__(self, predictor, opts: OutputOptions, on_device: bool | None = None):
        self.predictor, self.opts = predictor, opts
        device = predictor.backend.device
        if on_device is None:
            on_device = device.type == 'cuda' and device_path_supported(opts)
        elif on_device and not device_path_supported(opts):
            raise ConfigError('the device path needs output_resolution network and '
                              'cloud.voxel_size_m 0')
        self.device = DeviceOutputs(device) if on_device else None

    @property
    def on_device(self) -> bool:
        return self.device is not None

    def run(self, inputs: list[CameraInput], K: np.ndarray | None, T: np.ndarray | None,
            stamp_ns: int, frames: Frames, stage=lambda name, seconds: None) -> RigOutputs:
        """Predict one set and build its messages; stage(name, seconds) gets the time of
        'inference' (upload, preprocessing, network) and 'outputs' (packing, download,
        messages). A set whose views differ in size takes the host path."""
        start = time.perf_counter()
        rgb = [c.rgb for c in inputs]
        if self.device is None or len({img.shape for img in rgb}) != 1:
            pred = self.predictor.predict(rgb, K, T)
            stage('inference', time.perf_counter() - start)
            start = time.perf_counter()
            out = build_outputs(pred, inputs, stamp_ns, frames, self.opts)
        else:
            images = self.device.upload(rgb)
            pred = self.predictor.predict_tensors(images, K, T)
            stage('inference', time.perf_counter() - start)
            start = time.perf_counter()
            out = build_outputs_on_device(pred, images, inputs, stamp_ns, frames, self.opts,
                                          self.device)
        stage('outputs', time.perf_counter() - start)
        return out
