"""The depth node's messages from the device path: the same messages as
`outputs.build_outputs`, built from arrays that stayed on the GPU until one download.

Pure (no rclpy): the device path runs the same torch code on CPU tensors, which is how the two
paths are tested against each other.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from da3_ros.engine.device_outputs import DeviceOutputs
from da3_ros.engine.prediction import TensorPrediction
from da3_ros.ros.depth.outputs import (
    CameraInput,
    Frames,
    OutputOptions,
    RigOutputs,
    camera_messages,
    fixed_from_cameras,
    rig_outputs,
    wants_points,
)
from da3_ros.ros.pointcloud import cloud_to_points, packed_to_cloud


def device_path_supported(opts: OutputOptions) -> bool:
    """The device path publishes at the network resolution without per-camera voxels (those
    outputs are built on the host)."""
    return opts.resolution == 'network' and opts.cloud.voxel_size_m == 0


def build_outputs_on_device(pred: TensorPrediction, images: Tensor, inputs: list[CameraInput],
                            stamp_ns: int, frames: Frames, opts: OutputOptions,
                            device: DeviceOutputs, downloaded=lambda: None) -> RigOutputs:
    """All messages for one set from a TensorPrediction whose depth is still on the device.

    images: (S, H_in, W_in, 3) uint8 on the device, the set the prediction was made from
    (colours of the clouds); downloaded(): called once the packed arrays are on the host,
    before the messages are built (the node times the two apart); the rest as build_outputs,
    whose messages these equal
    """
    if not device_path_supported(opts):
        raise ValueError('input-resolution outputs and per-camera voxels need build_outputs')
    if len(pred.views) != len(inputs):
        raise ValueError(f'{len(pred.views)} views for {len(inputs)} cameras')
    T_fixed_cams = (fixed_from_cameras(pred.T_cam_world, frames)
                    if 'fused_cloud' in opts.publish else None)
    host = device.download(pred, images, opts.cloud, opts.remove_sky,
                           None if T_fixed_cams is None else np.stack(T_fixed_cams),
                           clouds=wants_points(opts), fused_voxel_size_m=opts.fused_voxel_size_m)
    downloaded()
    cams = []
    for v, cam in enumerate(inputs):
        conf = None if host.confidence is None else host.confidence[v]
        out = camera_messages(host.depth[v], conf, pred.K[v], cam.header, opts,
                              cam.distortion)
        if 'cloud' in opts.publish:
            out.cloud = packed_to_cloud(host.clouds[v], cam.header)
        cams.append(out)

    def fused_cloud(_, header):
        if host.fused is not None:                     # voxel-averaged on the device
            return packed_to_cloud(host.fused, header)
        return packed_to_cloud(np.concatenate(host.fixed_clouds), header)
    return rig_outputs(pred, inputs, cams, stamp_ns, frames, opts, fused_cloud)


def _cloud_difference(name: str, got, want, rtol: float, atol_m: float) -> list[str]:
    """Why two PointCloud2 differ ([] when they carry the same points, xyz within tolerance:
    the GPU's float32 back-projection rounds differently from numpy's)."""
    layout = ([f.name for f in got.fields], got.width, got.point_step, got.header)
    if layout != ([f.name for f in want.fields], want.width, want.point_step, want.header):
        return [f'{name}: fields / width / point_step / header differ '
                f'({got.width} vs {want.width} points)']
    a, b = cloud_to_points(got), cloud_to_points(want)
    problems = []
    if not np.allclose(a.xyz, b.xyz, rtol=rtol, atol=atol_m, equal_nan=True):
        problems.append(f'{name}: xyz differ by up to {np.nanmax(np.abs(a.xyz - b.xyz)):.3g}')
    if not np.array_equal(a.rgb, b.rgb):
        problems.append(f'{name}: colours differ')
    if (a.confidence is None) != (b.confidence is None) or (
            a.confidence is not None and not np.array_equal(a.confidence, b.confidence)):
        problems.append(f'{name}: confidence differs')
    return problems


def _scan_difference(got, want, atol_m: float) -> list[str]:
    """Why two LaserScans differ: fields other than ranges, or ranges beyond atol_m (a bin
    whose nearest point differs in rounding; inf and NaN must match)."""
    a, b = np.asarray(got.ranges, np.float32), np.asarray(want.ranges, np.float32)
    meta = [(m.header, m.angle_min, m.angle_max, m.angle_increment, m.range_min, m.range_max)
            for m in (got, want)]
    if meta[0] != meta[1] or a.shape != b.shape:
        return ['scan: header / angles / range limits / size differ']
    if not np.allclose(a, b, rtol=0.0, atol=atol_m, equal_nan=True):
        return [f'scan: ranges differ ({int((~np.isclose(a, b, 0, atol_m, True)).sum())} bins)']
    return []


def output_differences(got: RigOutputs, want: RigOutputs, rtol: float = 1e-5,
                       atol_m: float = 1e-4) -> list[str]:
    """What differs between the device path's messages (got) and the host path's (want) for
    one set; [] when they agree: images, CameraInfo, transforms and RigDepth identical, clouds
    with the same points (xyz within rtol / atol_m). The node runs this once on its first set
    (DepthPipeline check_device), so every GPU start checks the device path where it runs."""
    problems = []
    for v, (g, w) in enumerate(zip(got.cameras, want.cameras, strict=True)):
        cam = f'camera {v}'
        for name in ('depth', 'confidence', 'camera_info', 'colorized_depth'):
            if getattr(g, name) != getattr(w, name):
                problems.append(f'{cam} {name} differs')
        if (g.cloud is None) != (w.cloud is None):
            problems.append(f'{cam} cloud: present on one path only')
        elif w.cloud is not None:
            problems += _cloud_difference(f'{cam} cloud', g.cloud, w.cloud, rtol, atol_m)
    if (got.fused_cloud is None) != (want.fused_cloud is None):
        problems.append('fused cloud: present on one path only')
    elif want.fused_cloud is not None:
        problems += _cloud_difference('fused cloud', got.fused_cloud, want.fused_cloud, rtol,
                                      atol_m)
    for name in ('obstacles', 'scan'):     # Nav2 outputs (ros.nav_outputs)
        g, w = getattr(got, name, None), getattr(want, name, None)
        if (g is None) != (w is None):
            problems.append(f'{name}: present on one path only')
        elif w is not None and name == 'obstacles':
            problems += _cloud_difference(name, g, w, rtol, atol_m)
        elif w is not None:
            problems += _scan_difference(g, w, atol_m)
    if got.transforms != want.transforms:
        problems.append('transforms differ')
    if got.rig_depth != want.rig_depth:
        problems.append('rig_depth differs')
    return problems
