"""One Prediction over a synchronised camera set -> every message the depth node publishes.

Per camera (header = the input image's stamp and optical frame):
- depth 32FC1 (metres when Prediction.is_metric, NaN = invalid) and confidence 32FC1;
- CameraInfo whose K and size are those of the published depth (network resolution: the
  prediction's K; input resolution: depth_at_input + K_input). The depth lies on the input
  image's own (possibly distorted) pixel grid, resized: when K came from the input CameraInfo
  (CameraInput.distortion set) its distortion_model and D are copied (they hold at any
  resolution of that image); when K is the network's estimate, D = 0 plumb_bob (DA3's
  pinhole model of the image). The clouds back-project through K only (no distortion);
- PointCloud2 (x y z rgb confidence) = back-projection of exactly that depth through exactly
  that K, then the CloudConfig filters (confidence, sky, stride, range, voxel);
- optional colourised depth (rgb8) for people.
Rig: a fused cloud in the fixed frame, DA3 camera poses as TF (<frame><suffix> under the pose
parent, only when the poses were estimated, never given), and one RigDepth message.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2
from std_msgs.msg import Header

from da3_ros.engine.prediction import Prediction, ViewGeometry
from da3_ros.geometry.nav_obstacles import NavConfig
from da3_ros.geometry.points import CloudConfig, Points, depth_to_points, fuse_points
from da3_ros.msg import CameraDepth, RigDepth
from da3_ros.ros.camera_info import Pinhole, pinhole_to_camera_info
from da3_ros.ros.depth.nav_outputs import NAV_OUTPUTS, nav_messages
from da3_ros.ros.image_conversion import colorize_depth, float_to_image
from da3_ros.ros.pointcloud import points_to_cloud
from da3_ros.ros.tf_buffer import make_transform_stamped, matrix_to_transform, ns_to_stamp
from da3_ros.ros.time_sync import stamp_to_ns


@dataclass(frozen=True)
class CameraInput:
    """One camera's image of the set: name, input header (stamp, optical frame) and
    rgb (H_in, W_in, 3) uint8; distortion: (distortion_model, D) of the input CameraInfo whose
    K the prediction used, copied into the published CameraInfo (None: D = 0 plumb_bob)."""

    name: str
    header: Header
    rgb: np.ndarray
    distortion: tuple[str, tuple[float, ...]] | None = None


@dataclass(frozen=True)
class OutputOptions:
    """What to build. publish: names from params.OUTPUTS; resolution 'network'|'input'."""

    publish: frozenset[str]
    resolution: str = 'network'
    cloud: CloudConfig = CloudConfig()
    remove_sky: bool = True
    fused_voxel_size_m: float = 0.0
    pose_frame_suffix: str = '_da3'
    model_name: str = ''
    nav: NavConfig = NavConfig()    # obstacle cloud / scan settings (publish obstacles, scan)


@dataclass(frozen=True)
class Frames:
    """Where rig outputs go. T_*_world: (4, 4) metres from DA3's world frame, or None when
    unknown (then the fused cloud / RigDepth poses / TF are not built)."""

    fixed_frame: str
    T_fixed_world: np.ndarray | None
    pose_parent_frame: str
    T_parent_world: np.ndarray | None
    poses_estimated: bool  # False when the rig's own extrinsics were given (never re-published)
    nav_frame: str = ''                     # the Nav2 outputs' base frame (nav.base_frame)
    T_nav_world: np.ndarray | None = None   # (4, 4) world -> nav_frame, None: not built


@dataclass(frozen=True)
class CameraView:
    """One camera's published arrays, all at one resolution (H, W).

    depth, confidence: (H, W) float32 (confidence None if the model has none)
    sky: (H, W) bool or None; rgb: (H, W, 3) uint8; K: (3, 3) float64 pixels of (H, W)
    """

    depth: np.ndarray
    confidence: np.ndarray | None
    sky: np.ndarray | None
    rgb: np.ndarray
    K: np.ndarray


@dataclass
class CameraOutputs:
    depth: Image | None = None
    confidence: Image | None = None
    camera_info: CameraInfo | None = None
    cloud: PointCloud2 | None = None
    colorized_depth: Image | None = None


@dataclass
class RigOutputs:
    cameras: list[CameraOutputs]
    fused_cloud: PointCloud2 | None
    transforms: list[TransformStamped]
    rig_depth: RigDepth | None
    obstacles: PointCloud2 | None = None    # Nav2 outputs in Frames.nav_frame
    scan: LaserScan | None = None


def rgb_at_network(view: ViewGeometry, rgb: np.ndarray) -> np.ndarray:
    """(H_in, W_in, 3) -> (H, W, 3) uint8: the input pixel nearest each network pixel
    (the inverse of u_net = u_in * sx - ox)."""
    rows, cols = view.nearest_input_pixels()
    return rgb[rows[:, None], cols[None, :]]


def camera_view(pred: Prediction, v: int, rgb: np.ndarray, resolution: str) -> CameraView:
    """View v's depth, confidence, sky, colour and K at the published resolution."""
    if pred.K is None:
        raise ValueError('the prediction has no intrinsics (METRIC/MONO need CameraInfo)')
    conf = None if pred.confidence is None else pred.confidence[v]
    sky = None if pred.sky is None else pred.sky[v]
    if resolution == 'network':
        return CameraView(pred.depth[v], conf, sky, rgb_at_network(pred.views[v], rgb), pred.K[v])
    geometry = pred.views[v]
    conf_in = None if conf is None else geometry.resample_to_input(conf)
    sky_in = None if sky is None else geometry.resample_to_input(sky.astype(np.float32)) > 0.5
    return CameraView(pred.depth_at_input(v), conf_in, sky_in, rgb, pred.K_input(v))


def camera_messages(depth: np.ndarray, confidence: np.ndarray | None, K: np.ndarray,
                    header: Header, opts: OutputOptions,
                    distortion: tuple[str, tuple[float, ...]] | None = None) -> CameraOutputs:
    """One camera's image messages (depth, confidence, CameraInfo, colourised depth) without
    the cloud. depth, confidence: (H, W) float32; K: (3, 3) pixels of (H, W); distortion:
    CameraInput.distortion."""
    out, want = CameraOutputs(), opts.publish
    H, W = depth.shape
    if 'depth' in want or 'rig_depth' in want:
        out.depth = float_to_image(depth, header)
    if confidence is not None and ('confidence' in want or 'rig_depth' in want):
        out.confidence = float_to_image(confidence, header)
    if 'camera_info' in want or 'rig_depth' in want:
        model, D = distortion or ('plumb_bob', None)
        out.camera_info = pinhole_to_camera_info(Pinhole(K, H, W), header, D, model)
    if 'colorized_depth' in want:
        out.colorized_depth = colorize_depth(depth, header)
    return out


def wants_points(opts: OutputOptions) -> bool:
    return 'cloud' in opts.publish or 'fused_cloud' in opts.publish


def _camera_outputs(view: CameraView, cam: CameraInput, opts: OutputOptions,
                    ) -> tuple[CameraOutputs, Points | None]:
    header = cam.header
    out = camera_messages(view.depth, view.confidence, view.K, header, opts, cam.distortion)
    points = None
    if wants_points(opts):
        sky = view.sky if opts.remove_sky else None
        points = depth_to_points(view.depth, view.K, view.rgb, view.confidence, sky, opts.cloud)
        if 'cloud' in opts.publish:
            out.cloud = points_to_cloud(points, header)
    return out, points


def _rig_depth(pred: Prediction, inputs: list[CameraInput], cams: list[CameraOutputs],
               T_fixed_cams: list[np.ndarray], frames: Frames, stamp_ns: int,
               opts: OutputOptions) -> RigDepth:
    msg = RigDepth(model=opts.model_name, is_metric=bool(pred.is_metric))
    msg.header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=frames.fixed_frame)
    msg.scale_factor = float(1.0 if pred.depth_scale is None else pred.depth_scale[0])
    for cam_in, cam_out, T in zip(inputs, cams, T_fixed_cams, strict=True):
        entry = CameraDepth(camera_name=cam_in.name, depth=cam_out.depth,
                            camera_info=cam_out.camera_info,
                            t_fixed_camera=matrix_to_transform(T))
        if cam_out.confidence is not None:  # an empty Image when the model has no confidence
            entry.confidence = cam_out.confidence
        msg.cameras.append(entry)
    return msg


def fixed_from_cameras(T_cam_world: np.ndarray | None,
                       frames: Frames) -> list[np.ndarray] | None:
    """Per camera T_fixed_cam (4, 4) from the predicted T_cam_world (S, 4, 4), or None when
    the poses or the fixed frame's transform are unknown."""
    if T_cam_world is None or frames.T_fixed_world is None:
        return None
    return [frames.T_fixed_world @ T for T in np.linalg.inv(T_cam_world)]


def rig_outputs(pred, inputs: list[CameraInput], cams: list[CameraOutputs], stamp_ns: int,
                frames: Frames, opts: OutputOptions, fused_cloud) -> RigOutputs:
    """The rig-level messages around the per-camera ones: fused cloud, RigDepth, TF.

    pred: Prediction or TensorPrediction (uses T_cam_world, is_metric, depth_scale)
    fused_cloud: callable(T_fixed_cams, header) -> PointCloud2, called only when the fused
        cloud is published and the fixed frame is known
    """
    T_fixed_cams = fixed_from_cameras(pred.T_cam_world, frames)
    fused, rig_depth, transforms = None, None, []
    if T_fixed_cams is not None:
        if 'fused_cloud' in opts.publish:
            fused = fused_cloud(T_fixed_cams, Header(stamp=ns_to_stamp(stamp_ns),
                                                     frame_id=frames.fixed_frame))
        if 'rig_depth' in opts.publish:
            rig_depth = _rig_depth(pred, inputs, cams, T_fixed_cams, frames, stamp_ns, opts)
    T_world_cams = None if pred.T_cam_world is None else list(np.linalg.inv(pred.T_cam_world))
    if ('tf' in opts.publish and frames.poses_estimated and T_world_cams is not None
            and frames.T_parent_world is not None):
        transforms = [make_transform_stamped(
            frames.pose_parent_frame, cam.header.frame_id + opts.pose_frame_suffix,
            frames.T_parent_world @ T, stamp_to_ns(cam.header.stamp))
            for cam, T in zip(inputs, T_world_cams, strict=True)]
    obstacles, scan = _nav_outputs(pred, stamp_ns, frames, opts)
    return RigOutputs(cams, fused, transforms, rig_depth, obstacles, scan)


def _nav_outputs(pred, stamp_ns: int, frames: Frames, opts: OutputOptions):
    """(obstacle cloud, scan) in frames.nav_frame, each None when not published or when the
    camera poses (T_cam_world; one camera without poses: DA3's world is its frame) or
    T_nav_world are unknown. Computed where pred.depth is (the device path: on the GPU), always
    at the network resolution, so both paths give the same messages."""
    want = opts.publish & set(NAV_OUTPUTS)
    T_cam_world = pred.T_cam_world
    if T_cam_world is None and len(pred.views) == 1:
        T_cam_world = np.eye(4)[None]
    if not want or frames.T_nav_world is None or T_cam_world is None or pred.K is None:
        return None, None
    T_base_cams = frames.T_nav_world @ np.linalg.inv(T_cam_world)
    sky = pred.sky if opts.remove_sky else None
    return nav_messages(pred.depth, pred.K, T_base_cams, opts.nav,
                        Header(stamp=ns_to_stamp(stamp_ns), frame_id=frames.nav_frame),
                        frozenset(want), pred.confidence, sky)


def build_outputs(pred: Prediction, inputs: list[CameraInput], stamp_ns: int,
                  frames: Frames, opts: OutputOptions) -> RigOutputs:
    """All messages for one synchronised set (the host path, numpy).

    pred: S views in the order of inputs; stamp_ns: the set's stamp (fused cloud, RigDepth)
    """
    if pred.num_views != len(inputs):
        raise ValueError(f'{pred.num_views} views for {len(inputs)} cameras')
    cams, points = [], []
    for v, cam in enumerate(inputs):
        view = camera_view(pred, v, cam.rgb, opts.resolution)
        out, pts = _camera_outputs(view, cam, opts)
        cams.append(out)
        points.append(pts)

    def fused_cloud(T_fixed_cams, header):
        return points_to_cloud(fuse_points(points, T_fixed_cams, opts.fused_voxel_size_m), header)
    return rig_outputs(pred, inputs, cams, stamp_ns, frames, opts, fused_cloud)
