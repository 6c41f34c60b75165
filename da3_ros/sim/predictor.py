"""A simulated chunk predictor: DA3-like outputs from a ground-truth trajectory with
configurable errors, descriptors from the place's appearance, and false loops.

The scene is analytic per frame: a road 1.65 m below the camera (or the route's terrain,
ray-marched, so the depth sees the slope) and two 12 m facades whose lateral distances vary
smoothly with the place; everything else is sky (conf 0). The SLAM matches the same pixel of
the same frame across chunks, so per-frame consistency is all alignment needs; tying the
facades to the place (not the frame index) also makes a revisit see the same street again.

Place appearance (GroundTruth.look_alike) is an input of its own: inside a look-alike
stretch a frame's descriptors and facades are those of the place it looks like, and a loop
chunk over two look-alike windows returns the relative pose of the places they look like, as
DA3 run jointly on two look-alike frames would: a plausible, well-aligned, wrong loop. A loop
chunk whose two windows share no viewing direction (within 60 degrees) cannot be registered
by the network: it returns a random relative pose.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from da3_ros.engine.prediction import Prediction, ViewGeometry
from da3_ros.geometry.sim3 import Sim3, invert_se3, rotation_from_rotvec
from da3_ros.sim.routes import GroundTruth, load_trajectory
from da3_ros.slam.loops import LoopCandidate
from da3_ros.slam.protocol import ChunkOutput, Frame, Rig
from da3_ros.slam.views import pixel_rays

SKY_M = 80.0


@dataclass(frozen=True)
class NoiseProfile:
    """Error model of one chunk prediction ; angles in degrees."""

    scale_sigma: float = 0.05          # per-chunk log-normal scale error
    scale_gradient_sigma: float = 0.02
    rot_walk_deg: float = 0.02         # per frame per axis, outward from the reference
    trans_walk_m: float = 0.003
    rot_white_deg: float = 0.05
    trans_white_m: float = 0.01
    focal_sigma: float = 0.01          # per chunk
    depth_jitter_sigma: float = 0.01   # per frame
    depth_noise_sigma: float = 0.03    # per pixel, multiplicative
    outlier_ratio: float = 0.05
    outlier_low_conf: float = 0.7
    dropout_ratio: float = 0.0         # whole frames with conf 0


PROFILES = {
    'nominal': NoiseProfile(),
    'hard': NoiseProfile(0.15, 0.05, 0.04, 0.006, 0.1, 0.02, 0.03, 0.03, 0.06, 0.15, 0.7, 0.02),
    'noiseless': NoiseProfile(*([0.0] * 10), 0.7, 0.0),
}


@dataclass(frozen=True)
class SimCamera:
    """Image model: (H, W) pixels, horizontal field of view in degrees, centred."""

    hw: tuple[int, int] = (20, 64)
    hfov_deg: float = 85.0

    def K(self) -> np.ndarray:
        H, W = self.hw
        f = (W / 2) / np.tan(np.deg2rad(self.hfov_deg) / 2)
        return np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])


def terrain_ground_depth(T_world_cam0: np.ndarray, d: np.ndarray, o: np.ndarray,
                         terrain, steps: int = 32) -> np.ndarray:
    """Ray parameter (F, N, P) where rays first go below the terrain (inf: never by SKY_M).

    T_world_cam0: (F, 4, 4) camera 0 in a z-up world; d: (N, P, 3) rays in camera 0
    coordinates with unit z in their own camera (so the parameter is z-depth); o: (N, 3)
    camera centres in camera 0; terrain: (M, 2) xy -> (M,) ground height, metres.
    Geometric march from 0.3 m to SKY_M, then linear interpolation of the height gap.
    """
    t = np.geomspace(0.3, SKY_M, steps).astype(np.float32)
    R, c = T_world_cam0[:, :3, :3], T_world_cam0[:, :3, 3]
    d_w = np.einsum('fij,npj->fnpi', R, d).astype(np.float32)                # (F, N, P, 3)
    o_w = (np.einsum('fij,nj->fni', R, o) + c[:, None]).astype(np.float32)   # (F, N, 3)
    pts = o_w[:, :, None, None] + t[:, None] * d_w[..., None, :]              # (F,N,P,T,3)
    gap = pts[..., 2] - terrain(pts[..., :2].reshape(-1, 2)).reshape(pts.shape[:-1])
    below = gap < 0
    first = np.argmax(below, axis=-1)
    hit = below.any(-1) & (first > 0)
    i1 = np.maximum(first, 1)[..., None]
    g0, g1 = np.take_along_axis(gap, i1 - 1, -1)[..., 0], np.take_along_axis(gap, i1, -1)[..., 0]
    t0, t1 = t[i1[..., 0] - 1], t[i1[..., 0]]
    return np.where(hit, t0 + (t1 - t0) * g0 / np.where(g0 != g1, g0 - g1, 1.0), np.inf)


def corridor_depth(T_world_cam0: np.ndarray, rig: Rig, camera: SimCamera,
                   place_xy: np.ndarray | None = None, terrain=None) -> np.ndarray:
    """True z-depth (F, N, H*W) of the analytic street scene, metres; SKY_M for sky.

    T_world_cam0: (F, 4, 4) poses of camera 0 in a z-up world; the facade distances follow
    the place (x + y of place_xy (F, 2), default the true position, metres), so the same
    place gives the same street and a look-alike place the same facades. terrain: xy -> z
    ground height (z-up world), or None for a flat road 1.65 m below camera 0.
    """
    xy = T_world_cam0[:, :2, 3] if place_xy is None else place_xy
    f = (xy[:, 0] + xy[:, 1])[:, None, None]
    left = 7.0 + 4.5 * np.sin(2 * np.pi * f / 173.0)
    right = 8.0 + 4.0 * np.sin(2 * np.pi * f / 131.0 + 1.0)
    N = rig.num_cameras
    rays = pixel_rays(np.repeat(camera.K()[None], N, 0), camera.hw, None)     # (N, P, 3)
    d = np.einsum('nij,npj->npi', rig.T_cam0_cam[:, :3, :3], rays)[None]        # (1, N, P, 3)
    o = rig.T_cam0_cam[:, None, :3, 3][None]
    with np.errstate(divide='ignore', invalid='ignore'):
        if terrain is None:
            t_ground = np.where(d[..., 1] > 0, (1.65 - o[..., 1]) / d[..., 1], np.inf)
        else:
            t_ground = terrain_ground_depth(T_world_cam0, d[0], o[0, :, 0], terrain)
        t_left = np.where(d[..., 0] < 0, (-left - o[..., 0]) / d[..., 0], np.inf)
        t_right = np.where(d[..., 0] > 0, (right - o[..., 0]) / d[..., 0], np.inf)
    with np.errstate(invalid='ignore'):                # inf * 0: rays along the wall
        for t_wall in (t_left, t_right):              # facades are 12 m tall
            t_wall[o[..., 1] + t_wall * d[..., 1] < 1.65 - 12.0] = np.inf
    t = np.minimum(np.minimum(t_ground, t_left), t_right)
    return np.where(t < SKY_M, t, SKY_M)


def place_descriptors(T_world_cam: np.ndarray, dim: int = 128, length_m: float = 8.0,
                      heading_k: float = 2.0, noise: float = 0.2,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """Unit descriptors whose cosine similarity ~ exp(-|dp|^2 / 2l^2 - k^2 |dz|^2 / 2)
    (random Fourier features of position and optical axis) plus noise. (F, dim) float32."""
    W = np.random.default_rng(12345).normal(size=(6, dim))      # fixed: same 'network'
    b = np.random.default_rng(54321).uniform(0, 2 * np.pi, dim)
    u = np.concatenate([T_world_cam[:, :3, 3] / length_m, heading_k * T_world_cam[:, :3, 2]], 1)
    phi = np.sqrt(2.0 / dim) * np.cos(u @ W + b)
    if rng is not None and noise > 0:
        phi = phi + rng.normal(0, noise / np.sqrt(dim), phi.shape)
    return (phi / np.linalg.norm(phi, axis=1, keepdims=True)).astype(np.float32)


NUSCENES_YAWS_DEG = (0.0, 55.0, 110.0, 180.0, -110.0, -55.0)   # front, then clockwise


def surround_rig(yaws_deg=NUSCENES_YAWS_DEG, radius_m: float = 0.5) -> Rig:
    """A surround rig: camera n yawed yaws_deg[n] to the right of camera 0 (about camera
    0's y axis; the default is a nuScenes-like 6-camera layout), its centre on a circle of
    radius_m around the rig centre, which is radius_m behind camera 0.
    Returns Rig with T_cam0_cam (N, 4, 4), metres."""
    yaw = np.deg2rad(np.asarray(yaws_deg, np.float64))
    rotvec = np.zeros((len(yaw), 3))
    rotvec[:, 1] = yaw
    T = np.tile(np.eye(4), (len(yaw), 1, 1))
    T[:, :3, :3] = rotation_from_rotvec(rotvec)
    T[:, :3, 3] = radius_m * np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw) - 1], 1)
    return Rig(T)


@dataclass(frozen=True)
class FalseLoop:
    """An injected wrong pair: `match` is rendered as if it stood at `query`'s place."""

    query: int
    match: int
    yaw_rad: float
    offset_m: np.ndarray       # (3,) in the query camera frame


def plan_false_loops(gt: GroundTruth, count: int, rng: np.random.Generator,
                     min_distance_m: float = 200.0, min_gap: int = 400,
                     spacing: int = 200) -> list[FalseLoop]:
    """`count` random frame pairs more than `min_distance_m` apart; the
    match is at least `min_gap` frames older, queries are `spacing` frames apart."""
    pos, loops = gt.positions, []
    while len(loops) < count:
        q = int(rng.integers(min_gap + 60, len(gt) - 30))
        far = np.flatnonzero(np.linalg.norm(pos[:q - min_gap] - pos[q], axis=1)
                              > min_distance_m)
        if len(far) == 0 or any(abs(q - other.query) < spacing for other in loops):
            continue
        angle = rng.uniform(0, 2 * np.pi)
        offset = 3.0 * np.array([np.cos(angle), 0.0, np.sin(angle)])
        loops.append(FalseLoop(q, int(rng.choice(far)), float(rng.choice([-1, 1])
                                                            * np.deg2rad(10.0)), offset))
    return loops


class FalseLoopInjector:
    """Candidate hook: adds the planned false pairs (after NMS) when their query arrives."""

    def __init__(self, loops: list[FalseLoop]):
        self.loops = loops

    def __call__(self, query_frames: np.ndarray, candidates: list) -> list:
        extra = [LoopCandidate(fl.query, fl.match, 1.0) for fl in self.loops
                 if query_frames[0] <= fl.query <= query_frames[-1]]
        return extra + candidates


class SimulatedPredictor:
    """ChunkPredictor over a GroundTruth; every call draws fresh errors from `profile`."""

    def __init__(self, gt: GroundTruth, profile: NoiseProfile, seed: int, rig: Rig | None = None,
                 camera: SimCamera | None = None, false_loops: Sequence[FalseLoop] = ()):
        self.gt, self.profile = gt, profile
        self.rig, self.camera = rig or Rig.mono(), camera or SimCamera()
        self.rng = np.random.default_rng(seed)
        self.false_loops = list(false_loops)
        self.calls: list[tuple[np.ndarray, float]] = []   # (frame ids, true scale) per call

    def true_chunk_pose(self, call: int) -> Sim3:
        """T_world_chunk of call `call`: its reference view, scaled by 1 / its scale error."""
        ids, scale = self.calls[call]
        T = self.gt.T_world_cam[ids[len(ids) // 2]]
        return Sim3(1.0 / scale, T[:3, :3], T[:3, 3])

    def frames(self) -> list[Frame]:
        return [Frame(i, float(t)) for i, t in enumerate(self.gt.stamps_s)]

    def predict_chunk(self, frames: Sequence[Frame]) -> ChunkOutput:
        """One joint prediction over the views of `frames` (a frame may ask for only some
        rig cameras, Frame.cameras); world = the middle frame's camera 0, chunk units."""
        ids = np.array([f.index for f in frames])
        N = self.rig.num_cameras
        view_frame = np.concatenate([[i] * len(f.camera_ids(N)) for i, f in enumerate(frames)])
        view_cam = np.concatenate([f.camera_ids(N) for f in frames]).astype(np.int64)
        T_world_cam0 = self._hallucinate(ids, self.gt.T_world_cam[ids].copy())
        T_world_cam0 = self._loop_chunk_view(ids, view_frame, view_cam, T_world_cam0)
        F, S = len(ids), len(view_frame)
        p, rng = self.profile, self.rng
        ref = F // 2
        T_ref_cam0 = invert_se3(T_world_cam0[ref])[None] @ T_world_cam0
        T_ref_cam0 = self._perturb(T_ref_cam0, ref)
        scale = float(np.exp(rng.normal(0, p.scale_sigma)))
        self.calls.append((ids, scale))
        T_ref_cam = T_ref_cam0[view_frame] @ self.rig.T_cam0_cam[view_cam]
        T_ref_cam[:, :3, 3] *= scale
        K = self.camera.K()
        K_pred = K.copy()
        K_pred[:2, :2] *= 1.0 + rng.normal(0, p.focal_sigma)
        depth, conf = self._depth(ids, scale, view_frame, view_cam)
        H, W = self.camera.hw
        view = ViewGeometry((H, W), (H, W), (1.0, 1.0), (0.0, 0.0))
        pred = Prediction(depth, conf, invert_se3(T_ref_cam), np.repeat(K_pred[None], S, 0),
                          (view,) * S, None, True, 1.0)
        T_world_cam = self.gt.T_world_cam[ids][view_frame] @ self.rig.T_cam0_cam[view_cam]
        T_world_cam[:, :3, 3] += self.gt.appearance_shift(T_world_cam[:, :3, 3])
        return ChunkOutput(pred, place_descriptors(T_world_cam, rng=rng))

    def _loop_chunk_view(self, ids: np.ndarray, view_frame: np.ndarray, view_cam: np.ndarray,
                         T: np.ndarray) -> np.ndarray:
        """What the network makes of a loop chunk (two windows of frames, newer first).

        Look-alike places: the older window is placed where the place it looks like stands
        relative to the place the newer window looks like (a shift of whole periods inside a
        look-alike stretch, none for a true revisit). No shared viewing direction (no
        view pair within 60 degrees): a random relative pose, 5-15 m and 20-60 degrees off.
        T: (F, 4, 4) camera-0 poses used for rendering, modified copy returned.
        """
        cut = np.flatnonzero(np.abs(np.diff(ids)) > 1)
        if len(cut) != 1:
            return T
        older = np.arange(len(ids)) > cut[0]
        mid_new, mid_old = cut[0] // 2, (cut[0] + 1 + len(ids)) // 2
        pos = self.gt.T_world_cam[ids[[mid_new, mid_old]], :3, 3]
        shift = self.gt.appearance_shift(pos)
        out = T.copy()
        out[older, :3, 3] += shift[1] - shift[0]
        axes = (T[:, None, :3, :3] @ self.rig.T_cam0_cam[None, :, :3, :3])[..., 2]   # (F,N,3)
        a_new = axes[mid_new, view_cam[view_frame == mid_new]]
        a_old = axes[mid_old, view_cam[view_frame == mid_old]]
        if (a_new @ a_old.T).max() >= np.cos(np.deg2rad(60.0)):
            return out
        yaw = self.rng.choice([-1, 1]) * np.deg2rad(self.rng.uniform(20, 60))
        wrong = np.eye(4)
        wrong[:3, :3] = rotation_from_rotvec(np.array([[0.0, yaw, 0.0]]))[0]
        wrong[:3, 3] = self.rng.uniform(5, 15) * np.array([1.0, 0.0, 0.0])
        anchor = out[mid_old]
        out[older] = (anchor @ wrong @ invert_se3(anchor[None])[0])[None] @ out[older]
        return out

    def _perturb(self, T: np.ndarray, ref: int) -> np.ndarray:
        """Random walks outward from the reference, white noise, scale gradient."""
        p, rng, F = self.profile, self.rng, len(T)
        steps = np.arange(F) - ref

        def walk(sigma):
            inc = rng.normal(0, sigma, (F, 3))
            inc[ref] = 0.0
            out = np.zeros((F, 3))
            out[ref + 1:] = np.cumsum(inc[ref + 1:], 0)
            out[:ref] = np.cumsum(inc[:ref][::-1], 0)[::-1]
            return out
        rot = walk(np.deg2rad(p.rot_walk_deg)) + rng.normal(0, np.deg2rad(p.rot_white_deg), (F, 3))
        trans = walk(p.trans_walk_m) + rng.normal(0, p.trans_white_m, (F, 3))
        rot[ref], trans[ref] = 0.0, 0.0                     # the reference view is exact
        out = T.copy()
        out[:, :3, :3] = rotation_from_rotvec(rot) @ T[:, :3, :3]
        gradient = 1.0 + rng.normal(0, p.scale_gradient_sigma) * steps / max(F, 1)
        out[:, :3, 3] = (T[:, :3, 3] + trans) * gradient[:, None]
        return out

    def _depth(self, ids: np.ndarray, scale: float, view_frame: np.ndarray,
               view_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Noisy depth and confidence (S, H, W) of the views (frame, camera), chunk units."""
        p, rng = self.profile, self.rng
        H, W = self.camera.hw
        T = self.gt.T_world_cam[ids]
        place_xy = (T[:, :3, 3] + self.gt.appearance_shift(T[:, :3, 3]))[:, :2]
        true = corridor_depth(T, self.rig, self.camera, place_xy, self.gt.terrain)  # (F, N, P)
        true = true[view_frame, view_cam][:, None]                                   # (S, 1, P)
        sky = true >= SKY_M
        jitter = np.exp(rng.normal(0, p.depth_jitter_sigma, (len(ids), 1, 1)))[view_frame]
        depth = true * jitter * (1.0 + rng.normal(0, p.depth_noise_sigma, true.shape))
        conf = 5.0 / (1.0 + true / 15.0) * rng.uniform(0.5, 1.5, true.shape)
        outlier = rng.random(true.shape) < p.outlier_ratio
        depth = np.where(outlier, rng.uniform(1.0, 80.0, true.shape), depth)
        conf = np.where(outlier & (rng.random(true.shape) < p.outlier_low_conf), 0.1 * conf, conf)
        conf[sky] = 0.0
        conf[(rng.random(len(ids)) < p.dropout_ratio)[view_frame]] = 0.0
        depth = np.where(sky, SKY_M, depth) * scale
        S = true.shape[0] * true.shape[1]
        return (depth.reshape(S, H, W).astype(np.float32),
                conf.reshape(S, H, W).astype(np.float32))

    def _hallucinate(self, ids: np.ndarray, T: np.ndarray) -> np.ndarray:
        """For a loop chunk of a planned false pair, move the match segment onto the query."""
        for fl in self.false_loops:
            if fl.query in ids and fl.match in ids:
                seg = ids < fl.query - 100                    # the older (match) window
                delta = np.eye(4)
                delta[:3, :3] = rotation_from_rotvec(np.array([[0.0, fl.yaw_rad, 0.0]]))[0]
                delta[:3, 3] = fl.offset_m
                move = self.gt.T_world_cam[fl.query] @ delta @ invert_se3(
                    self.gt.T_world_cam[fl.match][None])[0]
                T[seg] = move[None] @ T[seg]
        return T


def with_profile(profile: NoiseProfile, **changes) -> NoiseProfile:
    return replace(profile, **changes)


def simulated_rig(camera_yaw_deg: Sequence[float]) -> Rig:
    """N cameras at the rig origin, camera n yawed (about the optical y axis) from camera 0."""
    rotvec = np.zeros((len(camera_yaw_deg), 3))
    rotvec[:, 1] = np.deg2rad(camera_yaw_deg)
    T = np.tile(np.eye(4), (len(camera_yaw_deg), 1, 1))
    T[:, :3, :3] = rotation_from_rotvec(rotvec)
    return Rig(T)


def make_simulated(sim) -> tuple[SimulatedPredictor, Rig]:
    """The SLAM node's test-only simulated input (ros/slam/params.SimulationConfig) ->
    (SimulatedPredictor, its Rig); frame i is rendered at GT pose i."""
    rig = simulated_rig(sim.camera_yaw_deg)
    gt = load_trajectory(sim.trajectory)
    return SimulatedPredictor(gt, PROFILES[sim.profile], sim.seed, rig=rig,
                              camera=SimCamera(hw=sim.image_hw)), rig
