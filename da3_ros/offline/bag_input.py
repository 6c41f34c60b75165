"""A rosbag2 (sqlite3 or MCAP) as an offline source: camera sets in stamp order, /tf_static kept.

Camera topics are given, or detected: every Image / CompressedImage topic whose namespace also
holds a `camera_info` topic (`/ns/image_raw[/compressed]` + `/ns/camera_info`) and, for raw
images, whose first message has a colour or mono8 encoding (so a registered 16UC1 depth stream
is not taken for a camera). Messages are read with rosbags (no ROS installation needed) and
synchronised with the depth node's ApproximateTimeSync, so the sets equal the node's on replay.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from da3_ros.errors import InputError
from da3_ros.offline.rig_frame import CameraSource, RawMessage, RigFrame
from da3_ros.ros.camera_info import Pinhole, camera_info_to_pinhole
from da3_ros.ros.depth.outputs import CameraInput
from da3_ros.ros.errors import MessageError, TfError
from da3_ros.ros.image_conversion import (
    COLOUR_ENCODINGS,
    compressed_to_rgb,
    copy_header,
    image_to_rgb,
)
from da3_ros.ros.time_sync import ApproximateTimeSync, stamp_to_ns

log = logging.getLogger(__name__)

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
INFO = 'sensor_msgs/msg/CameraInfo'
TF = 'tf2_msgs/msg/TFMessage'


@dataclass(frozen=True)
class CameraTopics:
    """Where one camera's messages are in the bag (info_topic None: no CameraInfo)."""

    source: CameraSource
    image_topic: str
    info_topic: str | None
    compressed: bool


def open_bag(path: Path):
    """An opened rosbags AnyReader; any failure becomes one InputError naming the bag."""
    from rosbags.highlevel import AnyReader

    if not (path / 'metadata.yaml').is_file():
        raise InputError(f'{path} is not a rosbag2 folder (no metadata.yaml)')
    reader = AnyReader([path])
    try:
        reader.open()
    except Exception as err:  # rosbags' reader errors, sqlite3 / mcap decoding errors
        raise InputError(f'cannot read bag {path}: {type(err).__name__}: {err}') from err
    return reader


def _namespace(topic: str, compressed: bool) -> str:
    """'/ns/image_raw[/compressed]' -> '/ns' (the camera's namespace)."""
    base = topic.removesuffix('/compressed') if compressed else topic
    return base.rsplit('/', 1)[0] or '/'


def _is_colour(reader, connection) -> bool:
    """Whether a raw Image topic's first message has an encoding image_to_rgb accepts."""
    for conn, _, raw in reader.messages(connections=[connection]):
        return reader.deserialize(raw, conn.msgtype).encoding in COLOUR_ENCODINGS
    return False


def find_cameras(reader, image_topics: list[str] | None) -> tuple[CameraTopics, ...]:
    """The camera topics to use, in the given (or sorted) order. Raises InputError."""
    by_topic = {c.topic: c for c in reader.connections}
    infos = {t for t, c in by_topic.items() if c.msgtype == INFO}
    if image_topics:
        if missing := [t for t in image_topics if t not in by_topic]:
            there = sorted(t for t, c in by_topic.items() if c.msgtype in (IMAGE, COMPRESSED))
            raise InputError(f'camera topics not in the bag: {missing}; image topics there: '
                             f'{there}')
        chosen = list(image_topics)
    else:
        chosen = sorted(t for t, c in by_topic.items() if c.msgtype in (IMAGE, COMPRESSED)
                        and f'{_namespace(t, c.msgtype == COMPRESSED)}/camera_info' in infos
                        and (c.msgtype == COMPRESSED or _is_colour(reader, c)))
        if not chosen:
            raise InputError('no camera topics found: need an Image or CompressedImage topic '
                             'with a colour encoding and a camera_info topic beside it')
    cameras = []
    for topic in chosen:
        if by_topic[topic].msgtype not in (IMAGE, COMPRESSED):
            raise InputError(f'{topic} is a {by_topic[topic].msgtype}, not an image topic')
        compressed = by_topic[topic].msgtype == COMPRESSED
        ns = _namespace(topic, compressed)
        info = f'{ns}/camera_info'
        cameras.append(CameraTopics(CameraSource(ns.strip('/').replace('/', '_') or 'camera', ns),
                                    topic, info if info in infos else None, compressed))
    if len({c.source.name for c in cameras}) != len(cameras):
        raise InputError(f'camera namespaces repeat: {[c.image_topic for c in cameras]}')
    return tuple(cameras)


class BagSource:
    """Synchronised camera sets of one bag (see the module docstring)."""

    def __init__(self, path: str | Path, image_topics: list[str] | None = None,
                 slop_ns: int = 50_000_000, max_wait_ns: int = 1_000_000_000,
                 tf_tolerance_ns: int = 50_000_000):
        """slop_ns / max_wait_ns: as the depth node's sync.slop_s / sync.max_wait_s, in ns;
        tf_tolerance_ns: largest stamp gap of a /tf lookup in world_pose."""
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f'{self.path} does not exist')
        self.reader = open_bag(self.path)
        if self.reader.message_count == 0:
            raise InputError(f'bag {self.path} holds no messages')
        self.topics = find_cameras(self.reader, image_topics)
        self.cameras = tuple(c.source for c in self.topics)
        counts = {c.topic: c.msgcount for c in self.reader.connections}
        self.expected_sets = min(counts[c.image_topic] for c in self.topics)
        self.passthrough = self._tf_static()
        self.skipped: Counter = Counter()
        self._slop_ns, self._max_wait_ns = slop_ns, max_wait_ns
        self._tf_tolerance_ns = tf_tolerance_ns
        self._tf = None

    def _tf_static(self) -> tuple[RawMessage, ...]:
        conns = [c for c in self.reader.connections if c.topic == '/tf_static']
        return tuple(RawMessage(c.topic, c.msgtype, c.msgdef.data, t, bytes(raw),
                                tuple(c.ext.offered_qos_profiles))
                     for c, t, raw in self._read(conns))

    def _read(self, connections) -> Iterator[tuple]:
        """(connection, log time ns, raw bytes) in time order; reader failures -> InputError."""
        try:
            yield from self.reader.messages(connections=connections)
        except Exception as err:  # a corrupt chunk / row somewhere in the file
            raise InputError(f'cannot read bag {self.path}: {type(err).__name__}: {err}') \
                from err

    def _first_pinholes(self) -> dict[int, Pinhole]:
        """Camera index -> its first valid CameraInfo (so the first set already has K)."""
        found = {}
        for i, cam in enumerate(self.topics):
            conns = [c for c in self.reader.connections if c.topic == cam.info_topic]
            for c, _, raw in self._read(conns):
                try:
                    found[i] = camera_info_to_pinhole(self.reader.deserialize(raw, c.msgtype))
                    break
                except MessageError:
                    continue
        return found

    def frames(self) -> Iterator[RigFrame]:
        """Every complete set in stamp order; bad messages are skipped and counted."""
        index = {c.image_topic: (i, 'image') for i, c in enumerate(self.topics)}
        index.update({c.info_topic: (i, 'info') for i, c in enumerate(self.topics)
                      if c.info_topic})
        # A recorded bag is one timeline read once: a gap in it is real (a sparse recording),
        # not a clock jump to hold frames for (the last frame after one would never come out)
        sync = ApproximateTimeSync(len(self.topics), self._slop_ns, 10, self._max_wait_ns,
                                   max_jump_ns=2**62)
        pinholes = self._first_pinholes()
        conns = [c for c in self.reader.connections if c.topic in index]
        for conn, _, raw in self._read(conns):
            i, kind = index[conn.topic]
            try:
                msg = self.reader.deserialize(raw, conn.msgtype)
                if kind == 'info':
                    pinholes[i] = camera_info_to_pinhole(msg)
                    continue
                sets = sync.add(i, stamp_to_ns(msg.header.stamp), self._convert(i, msg))
            except MessageError as err:
                self._skip(err.cause, f'{conn.topic}: {err}')
                continue
            for synced in sets:
                yield RigFrame(synced.stamp_ns, tuple(
                    CameraInput(self.cameras[k].name, header, rgb)
                    for k, (header, rgb) in enumerate(synced.items)),
                    tuple(pinholes.get(k) for k in range(len(self.topics))))
        self.skipped.update(sync.drops)

    def _convert(self, i: int, msg) -> tuple:
        """(header, rgb (H, W, 3) uint8) of camera i's image message."""
        rgb = compressed_to_rgb(msg) if self.topics[i].compressed else image_to_rgb(msg)
        if not msg.header.frame_id:
            raise MessageError('no_frame_id', 'header.frame_id is empty')
        return copy_header(msg.header), rgb

    def _skip(self, cause: str, text: str) -> None:
        if not self.skipped[cause]:
            log.warning('skipped (%s): %s; further skips of this cause are only counted',
                        cause, text)
        self.skipped[cause] += 1

    def world_pose(self, world_frame: str, frame: str, stamp_ns: int) -> np.ndarray | None:
        """(4, 4) T_world_frame from the bag's /tf and /tf_static at stamp_ns, or None."""
        if self._tf is None:
            from da3_ros.ros.tf_buffer import TfBuffer

            self._tf = TfBuffer(cache_ns=2**62)  # the whole bag: offline, nothing expires
            conns = [c for c in self.reader.connections
                     if c.topic in ('/tf', '/tf_static') and c.msgtype == TF]
            for c, _, raw in self._read(conns):
                self._tf.ingest(self.reader.deserialize(raw, c.msgtype),
                                static=c.topic == '/tf_static')
        try:
            return self._tf.lookup(world_frame, frame, stamp_ns, self._tf_tolerance_ns)
        except TfError as err:
            self._skip(f'tf_{err.cause}', f'{world_frame} -> {frame}: {err}')
            return None

    def close(self) -> None:
        self.reader.close()
