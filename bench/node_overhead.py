"""Depth-node overhead per synchronised set, without the network (CPU, ms per set).

    .venv/bin/python bench/node_overhead.py [--repeats 5] [--process-res 504]

6 cameras of 1600 x 900 (the nuScenes sample's JPEGs, ../shared/data). Stages, as the node
runs them: conversion in (CompressedImage JPEG decode, or raw rgb8 Image), synchronisation (6
adds forming one set), output building (depth/confidence Images, CameraInfo, per-camera clouds,
fused cloud, TF, RigDepth; clouds alone also timed) at the network resolution and at the input
resolution, and serialisation of every output message (rclpy CDR, what publish() costs on top
of the middleware). The prediction is synthetic with the network's shapes; no model runs.
Prints one line per stage: median and min over the repeats.
"""
import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from da3_ros.engine.prediction import Prediction, ViewGeometry
from da3_ros.engine.preprocess import plan_resize
from da3_ros.geometry.points import CloudConfig, depth_to_points
from da3_ros.ros.depth.outputs import CameraInput, Frames, OutputOptions, build_outputs
from da3_ros.ros.depth.params import OUTPUTS
from da3_ros.ros.image_conversion import compressed_to_rgb, image_to_rgb
from da3_ros.ros.pointcloud import points_to_cloud
from da3_ros.ros.time_sync import ApproximateTimeSync

SAMPLES = Path(__file__).resolve().parents[2] / 'shared/data/nuscenes_mini_6cam_sample/samples'


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(median ms, min ms, last result) of fn() over repeats runs."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times), result


def synthetic_prediction(rng, S: int, process_res: int) -> Prediction:
    H, W = plan_resize(900, 1600, process_res).network_hw
    view = ViewGeometry((900, 1600), (H, W), (W / 1600, H / 900), (0.0, 0.0))
    K = np.array([[0.8 * W, 0, W / 2], [0, 0.8 * W, H / 2], [0, 0, 1.0]])
    T = np.stack([np.eye(4)] * S)
    T[:, 0, 3] = np.arange(S)
    return Prediction(rng.uniform(1, 50, (S, H, W)).astype(np.float32),
                      rng.uniform(1, 3, (S, H, W)).astype(np.float32), T,
                      np.stack([K] * S), (view,) * S, is_metric=True, depth_scale=np.ones(S))


def all_messages(out) -> list:
    msgs = [m for cam in out.cameras for m in (cam.depth, cam.confidence, cam.camera_info,
                                               cam.cloud, cam.colorized_depth) if m is not None]
    return msgs + [m for m in (out.fused_cloud, out.rig_depth) if m is not None]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--process-res', type=int, default=504)
    parser.add_argument('--stride', type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    jpegs = sorted(SAMPLES.glob('*CAM_*.jpg'))
    assert len(jpegs) == 6, SAMPLES
    compressed = [CompressedImage(format='jpeg', data=p.read_bytes()) for p in jpegs]
    rgbs = [compressed_to_rgb(m) for m in compressed]
    raws = [Image(height=900, width=1600, encoding='rgb8', step=4800, data=rgb.tobytes())
            for rgb in rgbs]
    rows = []

    def report(stage: str, fn):
        median, best, result = timed(fn, args.repeats)
        rows.append((stage, median, best))
        print(f'{stage:<58} {median:8.2f} ms  (min {best:.2f})', flush=True)
        return result

    report('conversion in: 6 x JPEG CompressedImage -> RGB', lambda: [
        compressed_to_rgb(m) for m in compressed])
    report('conversion in: 6 x rgb8 Image -> RGB', lambda: [image_to_rgb(m) for m in raws])

    def sync_one_set():
        sync = ApproximateTimeSync(6, 50_000_000, 10)
        return [sync.add(i, 1_000 + i, rgb) for i, rgb in enumerate(rgbs)][-1]
    report('sync: 6 adds -> 1 set', sync_one_set)

    pred = synthetic_prediction(rng, 6, args.process_res)
    inputs = [CameraInput(f'cam{i}', Header(frame_id=f'cam{i}'), rgb)
              for i, rgb in enumerate(rgbs)]
    frames = Frames('base_link', np.eye(4), 'base_link', np.eye(4), True)
    cloud_cfg = CloudConfig(stride=args.stride)
    H, W = pred.depth.shape[1:]
    for resolution in ('network', 'input'):
        if resolution == 'network':
            views = [(pred.depth[v], pred.K[v], pred.confidence[v]) for v in range(6)]
            colours = [rgb[:: 900 // H, :: 1600 // W][:H, :W] for rgb in rgbs]
            size = f'{H}x{W}'
        else:
            views = [(pred.depth_at_input(v), pred.K_input(v),
                      pred.views[v].resample_to_input(pred.confidence[v])) for v in range(6)]
            colours, size = rgbs, '900x1600'
        report(f'clouds only ({resolution} {size}): 6 x depth_to_points+cloud',
               lambda views=views, colours=colours: [
                   points_to_cloud(depth_to_points(d, K, c_rgb, conf, cfg=cloud_cfg), Header())
                   for (d, K, conf), c_rgb in zip(views, colours, strict=True)])
        opts = OutputOptions(frozenset(OUTPUTS) - {'colorized_depth'}, resolution, cloud_cfg)
        out = report(f'outputs ({resolution} {size}): all messages of the set',
                     lambda opts=opts: build_outputs(pred, inputs, 1_000, frames, opts))
        report(f'serialisation ({resolution} {size}): all messages, CDR',
               lambda out=out: [serialize_message(m) for m in all_messages(out)])
        mb = sum(len(serialize_message(m)) for m in all_messages(out)) / 1e6
        print(f'{"":<58} ({len(all_messages(out))} messages, {mb:.1f} MB per set)')


if __name__ == '__main__':
    main()
