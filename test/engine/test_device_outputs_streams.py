"""The device path's split packing (the per-camera records compacted first, the fixed-frame
records after, so that the records' copy to the host overlaps the rest) keeps what one
compaction kept; on CUDA, the overlapped copies give the bytes of the serial ones."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from da3_ros.engine.device_outputs import DeviceOutputs
from da3_ros.engine.prediction import TensorPrediction, ViewGeometry
from da3_ros.geometry.packed_points import compact_rows, compact_views, packing_slots

CLOUD = SimpleNamespace(min_confidence=1.5, min_range_m=1.0, max_range_m=35.0, stride=1,
                        voxel_size_m=0.0)


@pytest.mark.parametrize('words', [5, 4])
def test_split_compaction_keeps_each_views_kept_records_in_order(words):
    rng = np.random.default_rng(words)
    S, n = 4, 300
    keep = rng.random((S, n)) < 0.7
    keep[1] = False                    # a view without points
    keep[2] = True                     # and one without dropped points
    records = rng.normal(size=(S, n, words)).astype(np.float32)     # no exact zeros
    moved = records * 2 + 1
    slot, _ = packing_slots(torch.from_numpy(keep))
    for values in (records, moved):
        got = compact_rows(torch.from_numpy(values), slot).numpy()
        assert got.shape == values.shape
        for v in range(S):
            count = np.count_nonzero(keep[v])
            np.testing.assert_array_equal(got[v, :count], values[v][keep[v]])
            assert not got[v, count:].any()          # zeros after the kept records
    one = compact_views(torch.from_numpy(keep), torch.from_numpy(records),
                        torch.from_numpy(moved))
    np.testing.assert_array_equal(one.counts.numpy(), keep.sum(axis=1))


def scene(seed: int, device: str, S: int = 3, H: int = 56, W: int = 84):
    """download() arguments: a prediction on `device` (depth with NaN and negative pixels,
    confidence, sky), its uint8 images there, CLOUD, remove_sky, T_fixed_cams."""
    gen = torch.Generator().manual_seed(seed)
    depth = torch.rand((S, H, W), generator=gen) * 40 + 0.2
    depth[:, 0, :5] = float('nan')
    depth[:, 1, :3] = -1.0
    conf = torch.rand((S, H, W), generator=gen) * 5 + 1
    sky = torch.rand((S, H, W), generator=gen) < 0.1
    K = np.stack([[[60.0 + v, 0.2, W / 2], [0.0, 58.0, H / 2], [0.0, 0.0, 1.0]]
                  for v in range(S)])
    T = np.tile(np.eye(4), (S, 1, 1))
    T[:, :3, 3] = np.arange(3 * S).reshape(S, 3)
    T[:, :2, :2] = [[0.6, -0.8], [0.8, 0.6]]
    view = ViewGeometry((2 * H, 2 * W), (H, W), (0.5, 0.5), (0.0, 0.0))
    pred = TensorPrediction(depth.to(device), conf.to(device), np.tile(np.eye(4), (S, 1, 1)),
                            K, (view,) * S, sky.to(device), is_metric=True)
    rgb = torch.randint(0, 256, (S, 2 * H, 2 * W, 3), dtype=torch.uint8, generator=gen)
    return pred, rgb.to(device), CLOUD, True, T


def as_bytes(host) -> dict:
    """The published arrays' bytes (copied: the next download() rewrites pinned buffers)."""
    return {'depth': host.depth.tobytes(), 'confidence': host.confidence.tobytes(),
            'counts': [len(r) for r in host.clouds],
            'records': [r.tobytes() for r in host.clouds],
            'moved': [r.tobytes() for r in host.fixed_clouds]}


def test_overlap_has_no_effect_on_cpu():
    args = scene(0, 'cpu')
    overlapped = DeviceOutputs('cpu', overlap=True)
    assert overlapped._copy_stream(args[0].depth.device) is None
    got = as_bytes(overlapped.download(*args))
    assert got == as_bytes(DeviceOutputs('cpu', overlap=False).download(*args))
    assert 0 < min(got['counts']) and max(got['counts']) < 56 * 84


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('graphs', [True, False])
def test_overlapped_copies_give_the_serial_bytes(graphs):
    sets = [scene(seed, 'cuda', S=6, H=280, W=504) for seed in (1, 2)]
    serial = DeviceOutputs('cuda', compile=False, graphs=graphs, overlap=False)
    want = [as_bytes(serial.download(*args)) for args in sets]
    overlapped = DeviceOutputs('cuda', compile=False, graphs=graphs)
    assert overlapped.overlap
    for i in range(6):
        # Buffers poisoned and the two sets alternated: a copy that ran before the work it
        # needs would leave the poison or the other set's values.
        for name, buf in overlapped._pinned.items():
            if name not in ('upload', 'K', 'T'):
                buf.numpy().view(np.uint8).fill(255)
        assert as_bytes(overlapped.download(*sets[i % 2])) == want[i % 2], i
    assert overlapped.graphs == graphs          # the graphs were captured, not fallen back
