"""One synchronised camera set -> the depth node's messages, on the GPU when it can be.

The device path (backend on CUDA, network-resolution outputs, no per-camera voxels, views of
one size): uint8 images are uploaded once, preprocessed, run through the network and packed
into message arrays on the GPU, each array copied to the host once, while the packing goes on
(engine.device_outputs). Otherwise the
host path: Predictor.predict (numpy) and outputs.build_outputs. Both give the same
messages (test/ros/depth/test_device_path_outputs.py).
"""
from __future__ import annotations

import numpy as np

from da3_ros.engine.device_outputs import DeviceOutputs
from da3_ros.engine.stage_clock import StageClock
from da3_ros.errors import ConfigError
from da3_ros.ros.depth.outputs import (
    CameraInput,
    Frames,
    OutputOptions,
    RigOutputs,
    build_outputs,
)
from da3_ros.ros.depth.outputs_device import (
    build_outputs_on_device,
    device_path_supported,
    output_differences,
)


class DepthPipeline:
    """predictor: engine.predictor.Predictor; opts: OutputOptions
    on_device: force the device path on (any backend device, e.g. CPU tensors in tests) or
        off; None = on when the backend runs on CUDA and the outputs allow it
    check_device: build the first device-path set's messages on the host path too and compare
        them (output_differences); the result stays in device_check
    """

    def __init__(self, predictor, opts: OutputOptions, on_device: bool | None = None,
                 check_device: bool = False):
        self.predictor, self.opts = predictor, opts
        device = predictor.backend.device
        if on_device is None:
            on_device = device.type == 'cuda' and device_path_supported(opts)
        elif on_device and not device_path_supported(opts):
            raise ConfigError('the device path needs output_resolution network and '
                              'cloud.voxel_size_m 0')
        self.device = DeviceOutputs(device) if on_device else None
        self._check_pending = check_device and on_device
        # None until checked; then the differences found ([] = the paths agree)
        self.device_check: list[str] | None = None
        self._check_reported = False

    def new_device_check(self) -> list[str] | None:
        """device_check the first time it is asked for once the check ran (to be logged
        once), else None."""
        if self.device_check is None or self._check_reported:
            return None
        self._check_reported = True
        return self.device_check

    @property
    def on_device(self) -> bool:
        return self.device is not None

    def run(self, inputs: list[CameraInput], K: np.ndarray | None, T: np.ndarray | None,
            stamp_ns: int, frames: Frames, stage=lambda name, seconds: None) -> RigOutputs:
        """Predict one set and build its messages; stage(name, seconds) gets the host time of
        each step: on the device path 'upload' (staging + copy), 'network' (preprocessing +
        network), 'packing' (cloud packing + download), 'messages', and on CUDA the GPU time
        of the first three as 'gpu_upload', 'gpu_network', 'gpu_packing' (events; the host
        times of the network and packing stages overlap GPU work); on the host path
        'network' and 'messages'. A set whose views differ in size, or whose options (opts may
        be replaced while the node runs: `ros2 param set`) the device path does not support,
        takes the host path."""
        rgb, opts = [c.rgb for c in inputs], self.opts
        if (self.device is None or len({img.shape for img in rgb}) != 1
                or not device_path_supported(opts)):
            clock = StageClock('cpu')
            pred = self.predictor.predict(rgb, K, T)
            clock.lap('network')
            out = build_outputs(pred, inputs, stamp_ns, frames, opts)
            clock.lap('messages')
        else:
            clock = StageClock(self.device.device)
            images = self.device.upload(rgb)
            clock.lap('upload')
            pred = self.predictor.predict_tensors(images, K, T)
            clock.lap('network')
            out = build_outputs_on_device(pred, images, inputs, stamp_ns, frames, opts,
                                          self.device, lambda: clock.lap('packing'))
            clock.lap('messages')
            if self._check_pending:
                self._check_pending = False
                self.device_check = output_differences(
                    out, build_outputs(pred.numpy(), inputs, stamp_ns, frames, opts))
        for name, seconds in clock.times().items():
            stage(name, seconds)
        return out
