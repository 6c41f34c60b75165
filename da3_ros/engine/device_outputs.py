"""The depth node's GPU path around the network: uint8 images up, publishable arrays down.

    dev = DeviceOutputs('cuda')
    images = dev.upload(rgb_list)                      # (S, H_in, W_in, 3) uint8 on the GPU
    pred = predictor.predict_tensors(images, K, T)     # preprocessing + network, on the GPU
    host = dev.download(pred, images, cloud_cfg, remove_sky=True, T_fixed_cams=T_fc)

Between the upload and the device-to-host copies every array stays on the device: colours
(the input pixel nearest each network pixel, as the numpy path), back-projection, filters and
PointCloud2 records (geometry.packed_points), optionally the same records in the fixed frame
(the fused cloud), compaction. On CUDA the pointwise part runs through torch.compile (eager
elsewhere; the compaction is eager: Inductor 2.11 failed on the prefix sum there); the same
torch code runs on CPU tensors, which is how it is tested against the numpy path.

On CUDA the copies to pinned host memory run on a side stream, each after the work it needs,
while the packing goes on (the transfers were 0.8 of the 1.4 ms of a 6-camera fused set on an
H100):
    current stream:  [network] | records + compaction + counts | moved compaction |
    copy stream:                 depth, confidence  ->  records, counts  ->  moved  | sync
download() returns after both streams are done, as one synchronised round did before.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from da3_ros.engine.compiled import capture_graph, compile_or_eager
from da3_ros.engine.prediction import TensorPrediction, ViewGeometry
from da3_ros.errors import InputError
from da3_ros.geometry.packed_points import (
    compact_rows,
    packing_slots,
    point_records,
    voxel_mean_records,
)


@dataclass(frozen=True)
class HostOutputs:
    """One set's published arrays on the host (S views at the network resolution H x W).

    depth: (S, H, W) float32, as TensorPrediction.depth
    confidence: (S, H, W) float32 or None
    clouds: S arrays (N_v, 5|4) float32 records (x y z rgb-bits [confidence]), metres or model
        units, camera optical frame, row-major pixel order
    fixed_clouds: the same records with x y z in the fixed frame, or None
    fused: with a fused voxel size, the fixed-frame records of all views averaged per voxel
        on the device (M, 5|4) instead of fixed_clouds, else None
    On CUDA the arrays are views of pinned buffers that the next download() overwrites.
    """

    depth: np.ndarray
    confidence: np.ndarray | None
    clouds: tuple[np.ndarray, ...]
    fixed_clouds: tuple[np.ndarray, ...] | None = None
    fused: np.ndarray | None = None


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
    graphs: replay the packing as two CUDA graphs (records, then moved) per input signature
        (default: on CUDA); if capturing fails, it runs without (logged once)
    staging_threads: host threads that copy the views into the pinned staging buffer
    overlap: copy to the host on a side stream (one per DeviceOutputs), each copy after the
        work it needs, while the packing goes on (default: on CUDA; no effect on CPU). False
        enqueues the copies on the current stream, so transfers and packing run one after the
        other as before; the same bytes either way (bench/node_gpu_path.py compares the two)
    """

    def __init__(self, device: str | torch.device, compile: bool | None = None,
                 graphs: bool | None = None, staging_threads: int = 4,
                 overlap: bool | None = None):
        self.device = torch.device(device)
        on_cuda = self.device.type == 'cuda'
        self.staging_threads = max(1, int(staging_threads))
        self._records = (compile_or_eager(_colour_and_records)
                         if (on_cuda if compile is None else compile) else _colour_and_records)
        self.graphs = on_cuda if graphs is None else graphs
        self.overlap = on_cuda if overlap is None else overlap
        self._graph = None                    # the last _Captured packing
        self._copies = None                   # the copy stream, made on first use
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
                 T_fixed_cams: np.ndarray | None = None, clouds: bool = True,
                 fused_voxel_size_m: float = 0.0) -> HostOutputs:
        """Pack clouds from pred and copy everything the messages need to the host; returns
        when all copies are done.

        pred: TensorPrediction with depth (S, H, W) on the device and K (S, 3, 3) numpy
        images: (S, H_in, W_in, 3) uint8 on the device, the images pred was made from
        cloud: a geometry.points.CloudConfig (min_confidence, min/max_range_m, stride; its
            voxel_size_m must be 0: voxel averaging is a host step of the numpy path)
        remove_sky: drop sky pixels when pred has a sky mask
        T_fixed_cams: (S, 4, 4) camera -> fixed frame, metres, or None (no fixed_clouds)
        clouds: False downloads depth and confidence only (clouds is then empty)
        fused_voxel_size_m: > 0 with T_fixed_cams: the fixed-frame records are averaged per
            voxel on the device (geometry.packed_points.voxel_mean_records) and come back as
            `fused`; the host would spend ~40 ms per 6-camera set on it
        """
        if getattr(cloud, 'voxel_size_m', 0.0) > 0:
            raise InputError('per-camera voxel averaging is not part of the device path')
        if pred.K is None:
            raise InputError('the prediction has no intrinsics (METRIC/MONO need CameraInfo)')
        dev = pred.depth.device
        # The network's outputs are complete once the work enqueued so far has run: their
        # copies start here and overlap the packing.
        host = self._download({'depth': pred.depth, 'confidence': pred.confidence}, dev)
        try:
            if clouds:
                rows, cols = self._nearest(pred.views, dev)
                inputs = {'depth': pred.depth, 'confidence': pred.confidence,
                          'sky': pred.sky if remove_sky else None, 'images': images,
                          'rows': rows, 'cols': cols, 'K': self._small('K', pred.K, dev),
                          'T': (None if T_fixed_cams is None
                                else self._small('T', T_fixed_cams, dev))}
                params = (cloud.min_confidence, float(cloud.min_range_m),
                          float(cloud.max_range_m), int(cloud.stride))
                graph = self._captured(inputs, params) if self.graphs else None
                packed = (graph.replay_records(inputs) if graph is not None
                          else self._pack_records(inputs, params))
                host.update(self._download({'records': packed['records'],
                                            'counts': packed['counts']}, dev))
                moved = graph.replay_moved() if graph is not None else self._pack_moved(packed)
                if moved is not None and fused_voxel_size_m > 0:
                    S, n, words = moved.shape
                    valid = (torch.arange(n, device=dev)[None, :]
                             < packed['counts'][:, None]).reshape(-1)
                    fused = voxel_mean_records(moved.reshape(-1, words), valid,
                                               fused_voxel_size_m)
                    host['fused'] = self._to_host('fused', fused, capacity=S * n)
                else:
                    host.update(self._download({'moved': moved}, dev))
        finally:
            # Also on errors: no copy outlives this call. Until here pred, packed and moved
            # hold the device tensors that the copies read, so the caching allocator cannot
            # hand their memory to other work before the copies are done.
            self._synchronize(dev)
        if not clouds:
            return HostOutputs(host['depth'], host['confidence'], ())
        counts = host['counts'].tolist()

        def split(records):
            return None if records is None else tuple(r[:c] for r, c in
                                                      zip(records, counts, strict=True))
        return HostOutputs(host['depth'], host['confidence'], split(host['records']),
                           split(host.get('moved')), host.get('fused'))

    def _pack_records(self, inputs: dict, params: tuple) -> dict:
        """The packing up to the per-camera records: 'records' (S, n, R) compacted, 'counts'
        (S,) int64, and for _pack_moved 'moved' (S, n, R) not compacted (or None), 'slot'."""
        i = inputs
        records, moved, keep = self._records(i['depth'], i['confidence'], i['sky'], i['K'],
                                             i['images'], i['rows'], i['cols'], i['T'],
                                             *params)
        slot, counts = packing_slots(keep)
        return {'records': compact_rows(records, slot), 'counts': counts, 'moved': moved,
                'slot': slot}

    @staticmethod
    def _pack_moved(packed: dict) -> Tensor | None:
        """The rest of the packing: the fixed-frame records compacted (S, n, R), or None."""
        return None if packed['moved'] is None else compact_rows(packed['moved'],
                                                                 packed['slot'])

    def _captured(self, inputs: dict, params: tuple) -> _Captured | None:
        """The packing's CUDA graphs for this input signature (captured on its first call);
        None if capturing failed (then never tried again)."""
        key = (params,) + tuple(None if t is None else (t.shape, t.dtype, t.device)
                                for t in inputs.values())
        if self._graph is not None and self._graph.key == key:
            return self._graph
        self._graph = None
        try:
            self._graph = _Captured(key, self._pack_records, self._pack_moved, inputs, params)
        except Exception as err:  # e.g. a capture-unsafe op on this PyTorch: run uncaptured
            self.graphs = False
            logging.getLogger(__name__).warning(
                'CUDA graph capture of the point packing failed (%s: %s); running it '
                'without', type(err).__name__, err)
        return self._graph

    def _small(self, name: str, matrices: np.ndarray, dev) -> Tensor:
        """(S, r, c) float64 host matrices -> device, through a pinned buffer (no sync)."""
        array = np.asarray(matrices, dtype=np.float64)
        if dev.type == 'cpu':
            return torch.from_numpy(array.copy())
        buf = self._buffer(name, array.shape, torch.float64)
        np.copyto(buf.numpy(), array)
        return buf.to(dev, non_blocking=True)

    def _copy_stream(self, dev) -> torch.cuda.Stream | None:
        """The side stream the host copies run on, or None (CPU, or overlap off)."""
        if dev.type != 'cuda' or not self.overlap:
            return None
        if self._copies is None or self._copies.device != dev:
            self._copies = torch.cuda.Stream(dev)
        return self._copies

    def _download(self, tensors: dict[str, Tensor | None], dev) -> dict:
        """Pinned host views of tensors (None stays None), filled by copies that run once the
        work enqueued so far on the current stream is done: on the copy stream, so that the
        work enqueued next runs meanwhile, or on the current stream. Not synchronised: the
        caller keeps the tensors referenced until _synchronize."""
        copies = self._copy_stream(dev)
        if copies is None:
            return {name: self._to_host(name, t) for name, t in tensors.items()}
        copies.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(copies):
            return {name: self._to_host(name, t) for name, t in tensors.items()}

    def _synchronize(self, dev) -> None:
        """Wait for the copies and the current stream's work."""
        if dev.type == 'cuda':
            copies = self._copy_stream(dev)
            if copies is not None:
                copies.synchronize()
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

    def _to_host(self, name: str, t: Tensor | None, capacity: int | None = None
                 ) -> np.ndarray | None:
        """t copied into the pinned buffer `name` on the current stream (not waited for), as
        a numpy view; CPU tensors as they are. capacity: rows of a buffer kept for tensors
        whose row count changes from set to set (pinned allocations are slow)."""
        if t is None:
            return None
        t = t.detach()
        if t.device.type == 'cpu':
            return t.numpy()
        rows = max(capacity or 0, t.shape[0])
        buf = self._buffer(name, (rows,) + tuple(t.shape[1:]), t.dtype)[:t.shape[0]]
        buf.copy_(t, non_blocking=True)
        return buf.numpy()


class _Captured:
    """The packing of one input signature as two CUDA graphs, replayed in order on the
    current stream: `records` (DeviceOutputs._pack_records, reading static input tensors that
    each call copies into) and `moved` (_pack_moved, reading the records graph's outputs), so
    that the records' copy to the host can be enqueued between the two replays. The outputs
    are the graphs' own tensors, rewritten by each replay."""

    def __init__(self, key: tuple, pack_records, pack_moved, inputs: dict, params: tuple):
        self.key = key
        self.static = {k: None if t is None else t.detach().clone() for k, t in inputs.items()}
        self.records_graph, self.packed = capture_graph(pack_records, self.static, params)
        self.moved_graph, self.moved = None, None
        if self.packed['moved'] is not None:
            # Warmed up on real records (a replay fills the captured outputs), and in its own
            # memory pool (the default), so nothing it allocates aliases the records graph's
            # memory, whose 'records' the copy stream reads meanwhile.
            self.records_graph.replay()
            self.moved_graph, self.moved = capture_graph(pack_moved, self.packed)

    def replay_records(self, inputs: dict) -> dict:
        """Enqueue the records graph on inputs; its outputs as _pack_records'."""
        for name, t in inputs.items():
            if t is not None and t.data_ptr() != self.static[name].data_ptr():
                self.static[name].copy_(t, non_blocking=True)
        self.records_graph.replay()
        return self.packed

    def replay_moved(self) -> Tensor | None:
        """Enqueue the moved graph (after replay_records); its output as _pack_moved's."""
        if self.moved_graph is not None:
            self.moved_graph.replay()
        return self.moved
