"""A small tf2 replacement: TFMessage <-> 4x4 matrices, a lookup buffer, and publishers.

tf2_ros is not installable here. TfBuffer keeps the transform tree from
/tf_static and /tf and answers lookup(target, source) by chaining through the common ancestor.
Dynamic transforms are NOT interpolated: a lookup at a stamp uses each edge's transform with the
nearest stamp (optionally within a tolerance), which is enough for camera rigs and slow frames.
Names: T_a_b maps points from frame b into frame a; quaternions in messages are x, y, z, w while
transforms3d uses w, x, y, z.
"""

import bisect
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Transform, TransformStamped
from tf2_msgs.msg import TFMessage
from transforms3d.quaternions import mat2quat, quat2mat

from da3_ros.geometry.sim3 import invert_se3
from da3_ros.ros import qos
from da3_ros.ros.errors import TfError
from da3_ros.ros.time_sync import stamp_to_ns

CAUSES = ('bad_frame_id', 'self_transform', 'bad_transform', 'bad_quaternion',
          'unknown_frame', 'not_connected', 'loop', 'extrapolation')


def ns_to_stamp(stamp_ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> builtin_interfaces/Time."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def matrix_to_transform(T_parent_child: np.ndarray) -> Transform:
    """(4, 4) rigid transform (metres) -> geometry_msgs/Transform with an x, y, z, w quaternion."""
    T = np.asarray(T_parent_child, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise TfError('bad_transform', f'expected a finite (4, 4) matrix, got {T.shape}')
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise TfError('bad_transform', f'not a rotation: {R.tolist()}')
    quat_wxyz = mat2quat(R)
    msg = Transform()
    msg.translation.x, msg.translation.y, msg.translation.z = (float(v) for v in T[:3, 3])
    q = msg.rotation
    q.w, q.x, q.y, q.z = (float(v) for v in quat_wxyz)
    return msg


def transform_to_matrix(msg: Transform) -> np.ndarray:
    """geometry_msgs/Transform -> (4, 4) float64; the quaternion is normalised, zero rejected."""
    t, q = msg.translation, msg.rotation
    quat_wxyz = np.array([q.w, q.x, q.y, q.z], dtype=np.float64)
    translation = np.array([t.x, t.y, t.z], dtype=np.float64)
    if not (np.isfinite(quat_wxyz).all() and np.isfinite(translation).all()):
        raise TfError('bad_transform', f'NaN/inf in t={translation}, q_wxyz={quat_wxyz}')
    norm = np.linalg.norm(quat_wxyz)
    if norm < 1e-9:
        raise TfError('bad_quaternion', 'zero quaternion')
    T = np.eye(4)
    T[:3, :3] = quat2mat(quat_wxyz / norm)
    T[:3, 3] = translation
    return T


def make_transform_stamped(parent: str, child: str, T_parent_child: np.ndarray,
                           stamp_ns: int) -> TransformStamped:
    """TransformStamped with header.frame_id = parent, child_frame_id = child."""
    msg = TransformStamped(child_frame_id=child, transform=matrix_to_transform(T_parent_child))
    msg.header.frame_id = parent
    msg.header.stamp = ns_to_stamp(stamp_ns)
    return msg


def make_tf_message(transforms: list[tuple[str, str, np.ndarray, int]]) -> TFMessage:
    """[(parent, child, T_parent_child (4, 4), stamp_ns), ...] -> TFMessage."""
    return TFMessage(transforms=[make_transform_stamped(*t) for t in transforms])


@dataclass
class _Edge:
    """child -> parent edge: static (one matrix) or dynamic (stamp-sorted history)."""

    parent: str
    static: bool
    stamps_ns: list[int] = field(default_factory=list)
    matrices: list[np.ndarray] = field(default_factory=list)

    def at(self, stamp_ns: int | None, tolerance_ns: int | None) -> np.ndarray:
        if self.static or stamp_ns is None:
            return self.matrices[-1]
        i = bisect.bisect_left(self.stamps_ns, stamp_ns)
        nearest = min((j for j in (i - 1, i) if 0 <= j < len(self.stamps_ns)),
                      key=lambda j: abs(self.stamps_ns[j] - stamp_ns))
        if tolerance_ns is not None and abs(self.stamps_ns[nearest] - stamp_ns) > tolerance_ns:
            raise TfError('extrapolation', f'{self.parent}: nearest stamp '
                          f'{self.stamps_ns[nearest]} ns is > {tolerance_ns} ns from {stamp_ns}')
        return self.matrices[nearest]


class TfBuffer:
    """Transform tree from TFMessages; each child frame has one parent (as in tf2)."""

    def __init__(self, cache_ns: int = 10_000_000_000):
        """cache_ns: dynamic history kept per edge, in stamp time (tf2's default is 10 s)."""
        self.cache_ns = int(cache_ns)
        self._edges: dict[str, _Edge] = {}
        self.rejected: Counter = Counter()  # cause -> transforms dropped by ingest()

    def frames(self) -> set[str]:
        """Every frame id seen, parents and children."""
        return set(self._edges) | {e.parent for e in self._edges.values()}

    def parent(self, frame: str) -> str | None:
        """The parent of `frame` in the tree, None for a root or an unknown frame."""
        edge = self._edges.get(frame)
        return None if edge is None else edge.parent

    def add_transform(self, msg: TransformStamped, static: bool) -> None:
        """Store one transform; a new parent or static-ness for a child replaces its edge."""
        parent, child = msg.header.frame_id, msg.child_frame_id
        for frame in (parent, child):
            if not frame or frame.startswith('/'):
                raise TfError('bad_frame_id', f'frame id {frame!r} is empty or starts with /')
        if parent == child:
            raise TfError('self_transform', f'{child} -> {parent}')
        T = transform_to_matrix(msg.transform)
        edge = self._edges.get(child)
        if edge is None or edge.parent != parent or edge.static != static:
            edge = self._edges[child] = _Edge(parent, static)
        if static:
            edge.stamps_ns, edge.matrices = [0], [T]
            return
        stamp_ns = stamp_to_ns(msg.header.stamp)
        i = bisect.bisect_left(edge.stamps_ns, stamp_ns)
        if i < len(edge.stamps_ns) and edge.stamps_ns[i] == stamp_ns:
            edge.matrices[i] = T  # a repeated stamp replaces, as tf2 does
        else:
            edge.stamps_ns.insert(i, stamp_ns)
            edge.matrices.insert(i, T)
        first = bisect.bisect_left(edge.stamps_ns, edge.stamps_ns[-1] - self.cache_ns)
        del edge.stamps_ns[:first], edge.matrices[:first]

    def ingest(self, msg: TFMessage, static: bool) -> int:
        """Store every valid transform of a TFMessage; returns how many; counts the rest."""
        stored = 0
        for transform in msg.transforms:
            try:
                self.add_transform(transform, static)
                stored += 1
            except TfError as err:
                self.rejected[err.cause] += 1
        return stored

    def _ancestors(self, frame: str) -> list[str]:
        """[frame, its parent, ..., its root]."""
        path = [frame]
        while path[-1] in self._edges:
            parent = self._edges[path[-1]].parent
            if parent in path:
                raise TfError('loop', f'frame {parent} is its own ancestor')
            path.append(parent)
        return path

    def _T_up(self, path: list[str], stamp_ns: int | None,
              tolerance_ns: int | None) -> np.ndarray:
        """T_path[-1]_path[0] as the product of the edges along path (child first)."""
        T = np.eye(4)
        for child in path[:-1]:
            T = self._edges[child].at(stamp_ns, tolerance_ns) @ T
        return T

    def lookup(self, target: str, source: str, stamp_ns: int | None = None,
               tolerance_ns: int | None = None) -> np.ndarray:
        """(4, 4) float64 T_target_source: maps points from `source` into `target`.

        Only the edges between the two frames and their lowest common ancestor are used.
        stamp_ns: None takes each edge's latest transform, else each edge's nearest stamp
        tolerance_ns: largest allowed |nearest stamp - stamp_ns|; None = any
        """
        known = self.frames()
        for frame in (target, source):
            if frame not in known:
                raise TfError('unknown_frame', f'{frame!r} not in {sorted(known)}')
        up_source, up_target = self._ancestors(source), self._ancestors(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise TfError('not_connected', f'{source!r} and {target!r} share no ancestor')
        source_path = up_source[: up_source.index(common) + 1]
        target_path = up_target[: up_target.index(common) + 1]
        T_common_source = self._T_up(source_path, stamp_ns, tolerance_ns)
        T_common_target = self._T_up(target_path, stamp_ns, tolerance_ns)
        return invert_se3(T_common_target) @ T_common_source


class TfListener:
    """Feeds a TfBuffer from /tf and /tf_static with tf2_ros's QoS (qos.TF, TF_STATIC_LISTENER)."""

    def __init__(self, node, buffer: TfBuffer, static_only: bool = False):
        self.buffer = buffer
        self._subs = [node.create_subscription(
            TFMessage, '/tf_static', lambda m: buffer.ingest(m, static=True),
            qos.TF_STATIC_LISTENER)]
        if not static_only:
            self._subs.append(node.create_subscription(
                TFMessage, '/tf', lambda m: buffer.ingest(m, static=False), qos.TF))


class TfBroadcaster:
    """Publishes on /tf (qos.TF) and /tf_static (qos.TF_STATIC_BROADCASTER).

    /tf_static keeps only the last message for late joiners (depth 1, transient local), so
    every send_static() republishes all static transforms sent so far, keyed by child frame,
    as tf2_ros's C++ StaticTransformBroadcaster does.
    """

    def __init__(self, node):
        self._tf = node.create_publisher(TFMessage, '/tf', qos.TF)
        self._tf_static = node.create_publisher(TFMessage, '/tf_static',
                                                qos.TF_STATIC_BROADCASTER)
        self._static: dict[str, TransformStamped] = {}

    def send(self, transforms: list[TransformStamped]) -> None:
        """Publish dynamic transforms on /tf."""
        self._tf.publish(TFMessage(transforms=list(transforms)))

    def send_static(self, transforms: list[TransformStamped]) -> None:
        """Add/replace static transforms (by child frame) and republish all on /tf_static."""
        self._static.update((t.child_frame_id, t) for t in transforms)
        self._tf_static.publish(TFMessage(transforms=list(self._static.values())))

    @property
    def publishers(self) -> tuple:
        """(/tf publisher, /tf_static publisher), e.g. to wait for subscription matching."""
        return self._tf, self._tf_static
