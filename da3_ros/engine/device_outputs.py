"""The depth node's GPU path around the network: uint8 images up, publishable arrays down.

    dev = DeviceOutputs('cuda')
    images = dev.upload(rgb_list)                      # (S, H_in, W_in, 3) uint8 on the GPU
    pred = predictor.predict_tensors(images, K, T)     # preprocessing + network, on the GPU
    host = dev.download(pred, images, cloud_cfg, remove_sky=True, T_fixed_cams=T_fc)

Between the upload and the one final device-to-host copy every array stays on the device:
colours (the input pixel nearest each network pixel, as the numpy path), back-projection,
filters and PointCloud2 records (geometry.packed_points), optionally the same records in the
fixed frame (the fused cloud), compaction. On CUDA the pointwise part runs through
torch.compile (eager elsewhere; the compaction is eager: Inductor 2.11 failed on the prefix
sum there); the same torch code runs on CPU tensors, which is how it is tested against the
numpy path.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from da3_ros.engine.compiled import compile_or_eager
from da3_ros.engine.prediction import TensorPrediction, ViewGeometry
from da3_ros.errors import InputError
from da3_ros.geometry.packed_points import compact_views, point_records


@dataclass(frozen=True)
class HostOutputs:
    """One set's published arrays on the host (S views at the network resolution H x W).

    depth: (S, H, W) float32, as TensorPrediction.depth
    confidence: (S, H, W) float32 or None
    clouds: S arrays (N_v, 5|4) float32 records (x y z rgb-bits [confidence]), metres or model
        units, camera optical frame, row-major pixel order
    fixed_clouds: the same records with x y z in the fixed frame, or None
    On CUDA the arrays are views of pinned buffers that the next download() overwrites.
    """

    depth: np.ndarray
    confidence: np.ndarray | None
    clouds: tuple[np.ndarray, ...]
    fixed_clouds: tuple[np.ndarray, ...] | None = None


def _colour_and_records(depth: Tensor, confidence: Tensor | None, sky: Tensor | None,
                       K: Tensor, images: Tensor, rows: Tensor, cols: Tensor, T: Tensor | None,
                       min_confidence: float | None, min_range_m: float, max_range_m: float,
                       stride: int) -> tuple[Tensor, Tensor | None, Tensor]:
    """Nearest-input-pixel colours (rows (S, H), cols (S, W) into images (S, H_in, W_in, 3))
    and point_records, as one pointwise function for torch.compile."""
    views = torch.arange(images.shape[0], device=images.device)[:, None, None]
    rgb = images[views, rows[:, :, None], cols[:, None, :]]          # (S, H, W, 3)
    return point_records(depth, K, rgb, confidence, sky, min_confidence, min_range_m,
                         max_range_m, stride, T)


class DeviceOutputs:
    """Upload of a camera set and the packed download of what the messages need.

    device: where the network runs ('cuda', 'cuda:N' or 'cpu')
    compile: run the pointwise packing through torch.compile (default: on CUDA)
    graphs: replay the packing as one CUDA graph per input signature (default: on CUDA);
        if capturing fails, it runs without (logged once)
    staging_threads: host threads that copy the views into the pinned staging buffer
    """

    def __init__(self, device: str | torch.device, compile: bool | None = None,
                 graphs: bool | None = None, staging_threads: int = 4):
        self.device = torch.device(device)
        on_cuda = self.device.type == 'cuda'
        self.staging_threads = max(1, int(staging_threads))
        self._records = (compile_or_eager(_colour_and_records)
                         if (on_cuda if compile is None else compile) else _colour_and_records)
        self.graphs = on_cuda if graphs is None else graphs
        self._graph = None                    # the last _Captured packing
        self._pinned: dict[str, Tensor] = {}
        self._indices: tuple = ((), None)     # (views, (rows, cols)) of the last set
        self._uploaded = None                 # CUDA event: the staging buffer is free again
        self._pool = None                     # staging threads, made on first use

    def upload(self, images: list[np.ndarray]) -> Tensor:
        """S (H, W, 3) uint8 RGB arrays of one size -> (S, H, W, 3) uint8 on the device
        (through one pinned staging buffer on CUDA): transfer(stage(images))."""
        return self.transfer(self.stage(images))

    def stage(self, images: list[np.ndarray]) -> Tensor:
        """Host part of the upload: the views copied into one (S, H, W, 3) uint8 tensor, in
        pinned memory on CUDA (reused: it waits for the previous transfer to finish)."""
        if not images or len({img.shape for img in images}) != 1:
            raise InputError('the device path needs S >= 1 images of one size, got '
                             f'{sorted({img.shape for img in images})}')
        if any(img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 for img in images):
            raise InputError('images must be (H, W, 3) uint8 RGB')
        if self.device.type == 'cpu':
            return torch.from_numpy(np.stack(images))
        staging = self._buffer('upload', (len(images),) + images[0].shape, torch.uint8)
        if self._uploaded is not None:
            self._uploaded.synchronize()
        if self.staging_threads > 1 and len(images) > 1:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor
                self._pool = ThreadPoolExecutor(self.staging_threads, 'da3_staging')
            list(self._pool.map(lambda v: np.copyto(staging[v].numpy(), images[v]),
                                range(len(images))))
        else:
            for view, img in enumerate(images):
                np.copyto(staging[view].numpy(), img)
        return staging

    def transfer(self, staged: Tensor) -> Tensor:
        """Device part of the upload: one non-blocking copy of a stage() result."""
        if self.device.type == 'cpu':
            return staged
        out = staged.to(self.device, non_blocking=True)
        self._uploaded = torch.cuda.Event()
        self._uploaded.record(torch.cuda.current_stream(self.device))
        return out

    def download(self, pred: TensorPrediction, images: Tensor, cloud, remove_sky: bool = True,
                 T_fixed_cams: np.ndarray | None = None, clouds: bool = True) -> HostOutputs:
        """Pack clouds from pred and copy everything the messages need to the host, once.

        pred: TensorPrediction with depth (S, H, W) on the device and K (S, 3, 3) numpy
        images: (S, H_in, W_in, 3) uint8 on the device, the images pred was made from
        cloud: a ros.pointcloud.CloudConfig (min_confidence, min/max_range_m, stride; its
            voxel_size_m must be 0: voxel averaging is a host step of the numpy path)
        remove_sky: drop sky pixels when pred has a sky mask
        T_fixed_cams: (S, 4, 4) camera -> fixed frame, metres, or None (no fixed_clouds)
        clouds: False downloads depth and confidence only (clouds is then empty)
        """
        if getattr(cloud, 'voxel_size_m', 0.0) > 0:
            raise InputError('per-camera voxel averaging is not part of the device path')
        if pred.K is None:
            raise InputError('the prediction has no intrinsics (METRIC/MONO need CameraInfo)')
        dev = pred.depth.device
        if not clouds:
            host = {n: self._to_host(n, t) for n, t in (('depth', pred.depth),
                                                        ('confidence', pred.confidence))}
            self._synchronize(dev)
            return HostOutputs(host['depth'], host['confidence'], ())
        rows, cols = self._nearest(pred.views, dev)
        inputs = {'depth': pred.depth, 'confidence': pred.confidence,
                  'sky': pred.sky if remove_sky else None, 'images': images, 'rows': rows,
                  'cols': cols, 'K': self._small('K', pred.K, dev),
                  'T': None if T_fixed_cams is None else self._small('T', T_fixed_cams, dev)}
        params = (cloud.min_confidence, float(cloud.min_range_m), float(cloud.max_range_m),
                  int(cloud.stride))
        out = self._replay(inputs, params) if self.graphs else None
        if out is None:
            out = self._pack(inputs, params)
        host = {name: self._to_host(name, t) for name, t in out.items()}
        self._synchronize(dev)
        counts = host['counts'].tolist()

        def split(records):
            return None if records is None else tuple(r[:c] for r, c in
                                                      zip(records, counts, strict=True))
        return HostOutputs(host['depth'], host['confidence'], split(host['records']),
                           split(host['moved']))

    def _pack(self, inputs: dict, params: tuple) -> dict:
        """Device tensors of one set: depth, confidence, records, moved, counts."""
        i = inputs
        records, moved, keep = self._records(i['depth'], i['confidence'], i['sky'], i['K'],
                                             i['images'], i['rows'], i['cols'], i['T'],
                                             *params)
        packed = compact_views(keep, records, moved)
        return {'depth': i['depth'], 'confidence': i['confidence'], 'records': packed.records,
                'moved': packed.moved, 'counts': packed.counts}

    def _replay(self, inputs: dict, params: tuple) -> dict | None:
        """_pack through a CUDA graph (captured on the first call of an input signature);
        None if capturing failed (then never tried again)."""
        key = (params,) + tuple(None if t is None else (t.shape, t.dtype, t.device)
                                for t in inputs.values())
        try:
            if self._graph is None or self._graph.key != key:
                self._graph = None
                self._graph = _Captured(key, self._pack, inputs, params)
            return self._graph.replay(inputs)
        except Exception as err:  # e.g. a capture-unsafe op on this PyTorch: run uncaptured
            self.graphs = False
            logging.getLogger(__name__).warning(
                'CUDA graph capture of the point packing failed (%s: %s); running it '
                'without', type(err).__name__, err)
            return None

    def _small(self, name: str, matrices: np.ndarray, dev) -> Tensor:
        """(S, r, c) float64 host matrices -> device, through a pinned buffer (no sync)."""
        array = np.asarray(matrices, dtype=np.float64)
        if dev.type == 'cpu':
            return torch.from_numpy(array.copy())
        buf = self._buffer(name, array.shape, torch.float64)
        np.copyto(buf.numpy(), array)
        return buf.to(dev, non_blocking=True)

    @staticmethod
    def _synchronize(dev) -> None:
        if dev.type == 'cuda':
            torch.cuda.current_stream(dev).synchronize()

    def _nearest(self, views: tuple[ViewGeometry, ...], dev) -> tuple[Tensor, Tensor]:
        """(rows (S, H), cols (S, W)) int64 on dev, kept while the view geometry repeats."""
        if self._indices[0] != views:
            pixels = [v.nearest_input_pixels() for v in views]
            self._indices = (views, tuple(torch.from_numpy(np.stack(p)).to(dev)
                                          for p in zip(*pixels, strict=True)))
        return self._indices[1]

    def _buffer(self, name: str, shape: tuple[int, ...], dtype) -> Tensor:
        buf = self._pinned.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._pinned[name] = torch.empty(shape, dtype=dtype, pin_memory=True)
        return buf

    def _to_host(self, name: str, t: Tensor | None) -> np.ndarray | None:
        if t is None:
            return None
        t = t.detach()
        if t.device.type == 'cpu':
            return t.numpy()
        buf = self._buffer(name, tuple(t.shape), t.dtype)
        buf.copy_(t, non_blocking=True)
        return buf.numpy()


class _Captured:
    """One CUDA graph of DeviceOutputs._pack for one input signature: static input tensors
    that each call copies into, and the graph's own output tensors."""

    def __init__(self, key: tuple, pack, inputs: dict, params: tuple):
        self.key = key
        dev = inputs['depth'].device
        self.static = {k: None if t is None else t.detach().clone() for k, t in inputs.items()}
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for _ in range(2):            # compile and warm up outside the capture
                pack(self.static, params)
        torch.cuda.current_stream(dev).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode='thread_local'):
            self.outputs = pack(self.static, params)

    def replay(self, inputs: dict) -> dict:
        for name, t in inputs.items():
            if t is not None and t.data_ptr() != self.static[name].data_ptr():
                self.static[name].copy_(t, non_blocking=True)
        self.graph.replay()
        return self.outputs
