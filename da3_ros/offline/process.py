"""The offline loop: source sets -> Predictor -> depth-node outputs -> consumers.

Each set goes through the same `build_outputs` as the depth node, with the node's frames for
a rig without extrinsics (rig.source none): DA3's world is the first camera's optical frame,
which is also the fixed frame of the fused cloud and the parent of the DA3 pose TF. Consumers
(bag writer, file writers, the SLAM stage) each get every SetResult in order. Without a
predictor no per-set forward runs: consumers get the raw sets only (the SLAM stage alone runs
its own network call per chunk of sets).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from da3_ros.errors import InputError
from da3_ros.offline.rig_frame import RigFrame, RigSource, SetConsumer, SetResult
from da3_ros.ros.depth.outputs import Frames, OutputOptions, build_outputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessOptions:
    """outputs: what build_outputs makes (as the node's publish.* / cloud.* parameters);
    use_camera_info: give the input's CameraInfo K to the predictor (a DA3METRIC model then
    returns metres; any-view models still predict their own K)."""

    outputs: OutputOptions
    use_camera_info: bool = False


def first_camera_frames(frame: RigFrame) -> Frames:
    """The node's Frames without rig extrinsics: everything in the first camera's frame."""
    first = frame.inputs[0].header.frame_id
    return Frames(first, np.eye(4), first, np.eye(4), poses_estimated=True)


def process_set(predictor, frame: RigFrame, index: int, options: ProcessOptions) -> SetResult:
    """One set through the network and build_outputs."""
    K = None
    if options.use_camera_info:
        K = frame.intrinsics()
        if K is None:
            raise InputError(f'set {index} (stamp {frame.stamp_ns} ns): a camera has no valid '
                             'CameraInfo, but the CameraInfo intrinsics were asked for')
    pred = predictor.predict([c.rgb for c in frame.inputs], K)
    outputs = build_outputs(pred, list(frame.inputs), frame.stamp_ns,
                            first_camera_frames(frame), options.outputs)
    return SetResult(index, frame, pred, outputs)


def run_sets(source: RigSource, predictor, options: ProcessOptions,
             consumers: list[SetConsumer], progress: Callable[[], None] | None = None) -> int:
    """Process every set of `source`; returns the number of sets.

    predictor None: no per-set forward; SetResults carry prediction and outputs None.
    Consumers are closed in order with success=True after the last set; when anything fails
    (a set, or a consumer's close), every consumer not yet closed is closed with
    success=False (their errors only logged) before the failure propagates.
    Raises InputError when the source yields no set at all.
    """
    count, closed = 0, 0
    try:
        for frame in source.frames():
            result = (SetResult(count, frame, None, None) if predictor is None
                      else process_set(predictor, frame, count, options))
            for consumer in consumers:
                consumer.consume(result)
            count += 1
            if progress is not None:
                progress()
        if count == 0:
            raise InputError('the input gave no complete camera set (see the skip counts: '
                             f'{dict(source.skipped) or "none"})')
        for consumer in consumers:
            closed += 1
            consumer.close(success=True)
    except BaseException:
        for consumer in consumers[closed:]:
            try:
                consumer.close(success=False)
            except Exception as err:  # the first failure is the one to report
                log.debug('closing %s after a failure: %s', type(consumer).__name__, err)
        raise
    return count
