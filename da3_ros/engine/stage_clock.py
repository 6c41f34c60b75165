"""Host and GPU time of the consecutive stages of one camera set.

    clock = StageClock(torch.device('cuda'))
    images = upload(...);        clock.lap('upload')
    pred = network(images);      clock.lap('network')
    host = download(pred);       clock.lap('packing')
    for name, seconds in clock.times().items(): report(name, seconds)

Host time alone misplaces GPU work: the network call returns once its kernels are queued and
the download that follows waits for them, so the network's time would show up as packing.
On CUDA each lap also records an event on the current stream, and times() reports the GPU time
between consecutive events as 'gpu_<stage>' beside the host times. Reading them waits only for
the last event, which has passed by then in the node (the download synchronises). Nothing is
synchronised between laps, so the clock does not slow the pipeline it measures.
"""
from __future__ import annotations

import time

import torch


class StageClock:
    """Laps of host time (perf_counter) and, on CUDA, of GPU time (events) since the last lap.

    device: the device the stages run on; GPU times only for CUDA devices
    """

    def __init__(self, device: torch.device | str):
        device = torch.device(device)
        self._stream = torch.cuda.current_stream(device) if device.type == 'cuda' else None
        self._host: list[tuple[str, float]] = []
        self._events: list[tuple[str, torch.cuda.Event]] = []
        self._last = time.perf_counter()
        if self._stream is not None:
            self._events.append(('', self._record()))

    def _record(self) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record(self._stream)
        return event

    def lap(self, name: str) -> None:
        """End stage `name` here (host clock now, GPU clock at this point of the stream)."""
        now = time.perf_counter()
        self._host.append((name, now - self._last))
        self._last = now
        if self._stream is not None:
            self._events.append((name, self._record()))

    def times(self) -> dict[str, float]:
        """{stage: host seconds} and on CUDA {gpu_<stage>: GPU seconds}, in lap order."""
        out = dict(self._host)
        if self._events:
            self._events[-1][1].synchronize()
            for (_, begin), (name, end) in zip(self._events, self._events[1:], strict=False):
                out[f'gpu_{name}'] = begin.elapsed_time(end) / 1e3
        return out
