"""The depth node's messages from the device path: the same messages as
`depth_outputs.build_outputs`, built from arrays that stayed on the GPU until one download.

Pure (no rclpy): the device path runs the same torch code on CPU tensors, which is how the two
paths are tested against each other.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from da3_ros.engine.device_outputs import DeviceOutputs
from da3_ros.engine.prediction import TensorPrediction
from da3_ros.ros.depth_outputs import (
    CameraInput,
    Frames,
    OutputOptions,
    RigOutputs,
    camera_messages,
    fixed_from_cameras,
    rig_outputs,
    wants_points,
)
from da3_ros.ros.pointcloud import (
    Points,
    packed_to_cloud,
    points_to_cloud,
    unpack_rgb,
    voxel_downsample,
)


def device_path_supported(opts: OutputOptions) -> bool:
    """The device path publishes at the network resolution without per-camera voxels (those
    outputs are built on the host)."""
    return opts.resolution == 'network' and opts.cloud.voxel_size_m == 0


def records_to_points(records: np.ndarray) -> Points:
    """(N, 5|4) float32 records (x y z rgb-bits [confidence]) -> Points."""
    confidence = records[:, 4].copy() if records.shape[1] == 5 else None
    return Points(records[:, :3].copy(), unpack_rgb(records[:, 3]), confidence)


def build_outputs_on_device(pred: TensorPrediction, images: Tensor, inputs: list[CameraInput],
                            stamp_ns: int, frames: Frames, opts: OutputOptions,
                            device: DeviceOutputs) -> RigOutputs:
    """All messages for one set from a TensorPrediction whose depth is still on the device.

    images: (S, H_in, W_in, 3) uint8 on the device, the set the prediction was made from
    (colours of the clouds); the rest as build_outputs, whose messages these equal
    """
    if not device_path_supported(opts):
        raise ValueError('input-resolution outputs and per-camera voxels need build_outputs')
    if len(pred.views) != len(inputs):
        raise ValueError(f'{len(pred.views)} views for {len(inputs)} cameras')
    T_fixed_cams = (fixed_from_cameras(pred.T_cam_world, frames)
                    if 'fused_cloud' in opts.publish else None)
    host = device.download(pred, images, opts.cloud, opts.remove_sky,
                           None if T_fixed_cams is None else np.stack(T_fixed_cams),
                           clouds=wants_points(opts))
    cams = []
    for v, cam in enumerate(inputs):
        conf = None if host.confidence is None else host.confidence[v]
        out = camera_messages(host.depth[v], conf, pred.K[v], cam.header, opts)
        if 'cloud' in opts.publish:
            out.cloud = packed_to_cloud(host.clouds[v], cam.header)
        cams.append(out)

    def fused_cloud(_, header):
        records = np.concatenate(host.fixed_clouds)
        if opts.fused_voxel_size_m > 0:
            points = voxel_downsample(records_to_points(records), opts.fused_voxel_size_m)
            return points_to_cloud(points, header)
        return packed_to_cloud(records, header)
    return rig_outputs(pred, inputs, cams, stamp_ns, frames, opts, fused_cloud)
