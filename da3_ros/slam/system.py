"""The streaming SLAM object: frames in, per-frame poses and a voxel map out, chunk by chunk.

    slam = SlamSystem(predictor, SlamConfig())
    for frame in frames:
        slam.add_frame(frame)          # runs the network once per `step` frames
    slam.finish()
    T_world_cam = slam.world_poses()   # (F, 4, 4), re-anchored after every optimisation

World = the reference view of the first chunk, in its units (metres for a metric model).
Latency is one chunk: after each chunk every frame seen so far has an updated pose.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from da3_ros.geometry.sim3 import Sim3
from da3_ros.geometry.umeyama import DegenerateAlignment, umeyama
from da3_ros.slam import loop_gate
from da3_ros.slam.chunking import ChunkConfig, Chunker, ChunkWindow
from da3_ros.slam.descriptors import frame_descriptors
from da3_ros.slam.image_archive import ImageArchive
from da3_ros.slam.loop_gate import GateConfig, LoopMeasurement
from da3_ros.slam.loops import LoopConfig, LoopDatabase
from da3_ros.slam.map import MapConfig, VoxelMap
from da3_ros.slam.overlap import AlignConfig, align_samples
from da3_ros.slam.pose_graph import Edge, EdgeSigmas, GraphConfig, PoseGraph
from da3_ros.slam.protocol import ChunkOutput, ChunkPredictor, Frame, Rig
from da3_ros.slam.views import ChunkViews, backproject_samples, grid_pixels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeNoise:
    """Base information of edges; scaled up by an edge's quality relative to the run.

    Set from the measured edge errors against the simulator's true chunk poses on tuning
    seeds 100-107, never 0-4 (docs/slam_benchmarks.md): overlap alignments err mostly
    along the motion, a few times less across it; the depth-ratio scale of an edge is good
    to ~0.2 %, a loop's (20 + 20 frames) to ~0.4 %; loop edges join co-located chunks, so
    their translation error does not grow with the edge length.
    """

    rot_deg: float = 0.1            # per axis
    trans_frac: float = 0.0005      # translation sigma per unit of edge length, every axis
    trans_depth_frac: float = 0.002  # plus this fraction of the median scene depth
    trans_along_frac: float = 0.0045  # plus this along the motion, per unit of edge length
    log_scale: float = 0.002        # depth-ratio scale of 60 shared frames: ~0.2 %
    loop_factor: float = 1.5        # loop rotation sigma = odometry x this
    loop_trans_depth_frac: float = 0.015  # loop translation sigma (isotropic) x scene depth
    loop_scale_factor: float = 2.0  # loop log-scale sigma = odometry x this (20 + 20 frames)
    fallback_factor: float = 20.0   # pose-only fallback edges


@dataclass(frozen=True)
class SlamConfig:
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    map: MapConfig = field(default_factory=MapConfig)
    noise: EdgeNoise = field(default_factory=EdgeNoise)
    loops_enabled: bool = True
    sparse_samples: int = 128       # depth samples kept per frame and camera for loops


@dataclass
class SlamStats:
    network_s: float = 0.0          # time inside the predictor (excluded from backend cost)
    total_s: float = 0.0
    chunks: int = 0
    fallback_edges: int = 0
    loop_candidates: int = 0
    loops_failed_quality: int = 0
    loops_failed_drift: int = 0     # implausible under the odometry chain (drift gate)
    candidates_failed_drift: int = 0  # skipped before the loop chunk (drift pre-gate)
    pregated_pairs: list = field(default_factory=list)   # (query, match) skipped so
    loops_accepted: int = 0
    loops_removed: int = 0
    measured_pairs: list = field(default_factory=list)   # (query, match) passing quality
    added_pairs: list = field(default_factory=list)      # ever added to the graph
    accepted_pairs: list = field(default_factory=list)   # in the graph now
    drift_d2: list = field(default_factory=list)         # (query, match, Mahalanobis^2)


class SlamSystem:
    def __init__(self, predictor: ChunkPredictor, cfg: SlamConfig | None = None,
                 rig: Rig | None = None, frame_lookup: Callable[[int], Frame] | None = None,
                 candidate_hook: Callable | None = None):
        """frame_lookup: index -> Frame (with images) for loop chunks, for frames no longer
        buffered (e.g. re-read from a bag); without it the system keeps the images of its
        loop-database frames itself (ImageArchive, JPEG). candidate_hook:
        (query_frames, candidates) -> candidates, applied after NMS (tests inject loops)."""
        self.predictor, self.cfg = predictor, cfg or SlamConfig()
        self.rig = rig or Rig.mono()
        self.frame_lookup, self.candidate_hook = frame_lookup, candidate_hook
        self.chunker = Chunker(self.cfg.chunk)
        self.buffer: dict[int, Frame] = {}
        self.graph = PoseGraph(self.cfg.graph)
        self.map = VoxelMap(self.cfg.map)
        self.loop_db = LoopDatabase(self.cfg.loop)
        self.images = ImageArchive()
        self.store = None
        self.prev: tuple[ChunkWindow, ChunkViews] | None = None
        self.seq_quality: list[tuple[float, float, float]] = []   # inlier, residual, depth
        self.pending: list[LoopMeasurement] = []
        self.loops: dict[int, LoopMeasurement] = {}
        self.stats = SlamStats()

    # -- stream ------------------------------------------------------------------------
    def add_frame(self, frame: Frame) -> ChunkWindow | None:
        self.buffer[frame.index] = frame
        window = self.chunker.push()
        return self._run(window)

    def finish(self) -> ChunkWindow | None:
        return self._run(self.chunker.flush())

    def world_poses(self, camera: int = 0) -> np.ndarray:
        """(F, 4, 4) float64 camera -> world of every frame processed so far."""
        return self.store.world_poses(self.graph.estimates, camera)

    def stamps_s(self) -> np.ndarray:
        return self.store.stamp_s[:self.store.size].copy()

    def _run(self, window: ChunkWindow | None) -> ChunkWindow | None:
        if window is None:
            return None
        t0 = time.perf_counter()
        self._process(window)
        for i in [i for i in self.buffer if i < window.end - self.cfg.chunk.overlap]:
            del self.buffer[i]
        self.stats.total_s += time.perf_counter() - t0
        self.stats.chunks += 1
        return window

    def _predict(self, frames: list[Frame]) -> ChunkOutput:
        t0 = time.perf_counter()
        out = self.predictor.predict_chunk(frames)
        self.stats.network_s += time.perf_counter() - t0
        return out

    # -- one chunk ---------------------------------------------------------------------
    def _process(self, window: ChunkWindow):
        frames = [self.buffer[i] for i in range(window.start, window.end)]
        ids = np.arange(window.start, window.end)
        out = self._predict(frames)
        views = ChunkViews.from_prediction(out.prediction, ids, self.rig.num_cameras)
        if self.store is None:
            from da3_ros.slam.frame_store import FrameStore
            hw = views.depth.shape[1:]
            self.store = FrameStore(self.rig.num_cameras, grid_pixels(hw, self.cfg.sparse_samples))
            self.hw = hw
        k = window.index
        if k == 0:
            self.graph.add_node(Sim3.identity())
        else:
            T_prev_curr, sigmas = self._odometry(window, views)
            self.graph.add_node(self.graph.estimates[k - 1] @ T_prev_curr)
            self.graph.add_odometry(Edge(k - 1, k, T_prev_curr, sigmas))
        own = np.arange(window.own_start, window.end)
        self.store.assign(k, views, own, np.array([self.buffer[i].stamp_s for i in own]))
        new = ids if self.prev is None else np.arange(self.prev[0].end, window.end)
        changed = False
        if self.cfg.loops_enabled and out.descriptors is not None:
            changed = self._close_loops(k, views, out.descriptors, new)
        # Depth samples (and images) serve loop verification of database frames only.
        dropped = own[~self.loop_db.contains(own)]
        self.store.release_samples(dropped)
        self.images.drop(dropped)
        if changed or (self.cfg.graph.metric_prior_sigma is not None and k > 0):
            self._optimise()
        self._insert_map(k, views, new)
        if changed:
            self.map.reanchor(self.graph.estimates)
        self.prev = (window, views)

    def _odometry(self, window: ChunkWindow, views: ChunkViews) -> tuple[Sim3, EdgeSigmas]:
        """Sim(3) current chunk -> previous chunk from the shared frames, with its sigmas."""
        prev_window, prev = self.prev
        shared = np.arange(window.start, window.start + window.shared)
        rows_p, rows_c = prev.view_rows(shared).ravel(), views.view_rows(shared).ravel()
        depth = prev.depth[rows_p]
        al = align_samples(views.points(rows_c), prev.points(rows_p), views.conf[rows_c],
                           prev.conf[rows_p], depth, self.cfg.align, views.depth[rows_c])
        scene = float(np.median(depth[prev.conf[rows_p] > 0])) if (prev.conf[rows_p] > 0).any() \
            else 1.0
        med_in, med_res = self._seq_medians()
        if al is None or al.inlier_ratio < 0.5 * med_in:
            self.stats.fallback_edges += 1
            log.warning('chunk %d: overlap alignment failed; pose-only fallback', window.index)
            T = pose_alignment(prev.T_chunk_cam[rows_p], views.T_chunk_cam[rows_c], scene)
            return T, self._sigmas(T, scene, self.cfg.noise.fallback_factor)
        self.seq_quality.append((al.inlier_ratio, al.median_rel_residual, scene))
        quality = max(1.0, al.median_rel_residual / med_res) * max(1.0, med_in / al.inlier_ratio)
        return al.T_dst_src, self._sigmas(al.T_dst_src, scene, quality)

    def _seq_medians(self) -> tuple[float, float]:
        if not self.seq_quality:
            return 0.0, np.inf
        q = np.array(self.seq_quality)
        return float(np.median(q[:, 0])), float(np.median(q[:, 1]))

    def _sigmas(self, T: Sim3, scene: float, factor: float) -> EdgeSigmas:
        """Odometry sigmas of T_i_j; the along-motion term follows R^T t, the direction of
        the translation in the frame of GTSAM's Between error."""
        n = self.cfg.noise
        length = float(np.linalg.norm(T.t))
        trans = n.trans_frac * length + n.trans_depth_frac * scene
        along = n.trans_along_frac * length * factor
        u = tuple(T.R.T @ T.t / length) if length > 0 else (0.0, 0.0, 1.0)
        return EdgeSigmas(np.deg2rad(n.rot_deg) * factor, trans * factor, n.log_scale * factor,
                          along if length > 0 else 0.0, u)

    def _loop_sigmas(self, T: Sim3, scene: float, quality: float) -> EdgeSigmas:
        n = self.cfg.noise
        trans = n.trans_frac * float(np.linalg.norm(T.t)) + n.loop_trans_depth_frac * scene
        return EdgeSigmas(np.deg2rad(n.rot_deg) * n.loop_factor * quality, trans * quality,
                          n.log_scale * n.loop_scale_factor * quality)

    # -- loops -------------------------------------------------------------------------
    def _close_loops(self, k: int, views: ChunkViews, descriptors: np.ndarray,
                     new: np.ndarray) -> bool:
        N = self.rig.num_cameras
        rows = views.view_rows(new)                                       # (F', N)
        if self.cfg.loop.per_camera and N > 1:
            desc = descriptors[rows]                                      # (F', N, D)
        else:
            desc = frame_descriptors(descriptors[rows.ravel()], N)       # (F', D)
        candidates = self.loop_db.query(new, desc)
        if self.candidate_hook is not None:
            candidates = self.candidate_hook(new, candidates)
        fresh = new % self.cfg.loop.keyframe_every == 0
        if self.cfg.loop.skip_revisits:
            fresh &= ~self.loop_db.revisits(new, desc)
        self.loop_db.add(new[fresh], desc[fresh])
        if self.frame_lookup is None:
            for i in new[fresh]:
                if self.buffer[i].images:
                    self.images.put(i, self.buffer[i].images)
        owner, seen, measured = self.store.owner, set(), []
        chains: dict[tuple[int, int], tuple] = {}   # (a, b) -> the odometry chain b -> a
        for c in candidates:
            a, b = int(owner[c.query]), int(owner[c.match])
            if a - b < 2 or (a, b) in seen or len(seen) >= self.cfg.loop.max_per_chunk:
                continue
            if (a, b) not in chains:     # odometry edges do not change during this call
                chains[a, b] = loop_gate.chain_relative(self.graph.odometry[b:a])
            if not self._could_colocate(c.query, c.match, chains[a, b]):
                self.stats.candidates_failed_drift += 1
                self.stats.pregated_pairs.append((c.query, c.match))
                continue
            seen.add((a, b))
            self.stats.loop_candidates += 1
            m = self._measure_loop(c.query, c.match, a, b, c.query_camera, c.match_camera)
            med_in, med_res = self._seq_medians()
            if m is None or not loop_gate.passes_quality(m, med_in, med_res, self.cfg.gate):
                self.stats.loops_failed_quality += 1
                continue
            self.stats.measured_pairs.append((m.query, m.match))
            if not self._plausible(m, chains[a, b]):
                self.stats.loops_failed_drift += 1
                continue
            measured.append(m)
        return self._accept_consistent(k, measured)

    def _plausible(self, m: LoopMeasurement, chain: tuple[Sim3, np.ndarray]) -> bool:
        """Drift gate: the loop's implied correction against the odometry chain b -> a
        (chain: loop_gate.chain_relative's T_b_a and covariance), Mahalanobis^2 <= drift_chi2,
        and, once the graph has loops, against the graph's current T_b_a and its joint
        marginal (docs/slam.md)."""
        gate = self.cfg.gate
        T_chain, C_chain = chain
        C_loop = self._loop_sigmas(m.T_b_a, self._scene_depth(), 1.0).covariance()
        d2 = loop_gate.drift_mahalanobis2(m.T_b_a, C_loop, T_chain, C_chain,
                                          gate.drift_sigma_factor)
        self.stats.drift_d2.append((m.query, m.match, d2))
        if not gate.drift_gate:
            return True
        if d2 > gate.drift_chi2:
            return False
        if not self.graph.loops:
            return True
        # the graph with its accepted loops knows the two places better than the chain
        T_graph, C_graph = self.graph.relative_covariance(m.b, m.a)
        return loop_gate.drift_mahalanobis2(m.T_b_a, C_loop, T_graph, C_graph,
                                            gate.drift_sigma_factor) <= gate.drift_chi2

    def _could_colocate(self, query: int, match: int, chain: tuple[Sim3, np.ndarray]) -> bool:
        """Drift pre-gate on a retrieved pair before its loop chunk is run: could the two
        frames stand at one place (within a scene depth) given the odometry chain b -> a
        (chain: T_b_a and covariance)?"""
        gate = self.cfg.gate
        if not gate.drift_gate:
            return True
        T_chain, C_chain = chain
        p_a, p_b = (self.store.T_chunk_cam[i, 0, :3, 3] for i in (query, match))
        d2 = loop_gate.colocation_mahalanobis2(
            p_a, p_b, T_chain, C_chain, gate.place_sigma_frac * self._scene_depth(),
            gate.drift_sigma_factor)
        return d2 <= gate.candidate_chi2

    def _scene_depth(self) -> float:
        return float(np.median(np.array(self.seq_quality)[:, 2])) if self.seq_quality else 1.0

    def _measure_loop(self, query: int, match: int, a: int, b: int,
                      query_camera: int | None = None,
                      match_camera: int | None = None) -> LoopMeasurement | None:
        """T_b_a from one loop chunk over a window of chunk a's frames around `query` and
        one of chunk b's around `match`.

        query_camera / match_camera: a surround rig's matching cameras (None: all); the loop
        chunk then runs only that camera of each side, each side is aligned with the stored
        samples of its own camera, whose poses in its chunk (T_chunk_cam of that camera)
        compose the rig's camera-to-camera extrinsics: a front-now / rear-then match gives
        the body (camera 0) chunk-to-chunk loop.
        """
        W, N = self.cfg.loop.window, self.rig.num_cameras
        wa, wb = (r[self.store.has_samples(r)] for r in (
            self.store.owned_range(a, query, W), self.store.owned_range(b, match, W)))
        if len(wa) < 2 or len(wb) < 2:
            return None
        cams = [list(range(N)) if c is None else [c] for c in (query_camera, match_camera)]
        frames = [self._frame(i) if camera is None else self._frame(i).subset([camera])
                  for ids, camera in ((wa, query_camera), (wb, match_camera)) for i in ids]
        out = self._predict(frames)
        loop_views = ChunkViews.from_prediction(out.prediction, np.arange(len(frames)),
                                                len(cams[0]))
        P = len(self.store.pixels)
        aligned = []
        for side, ids, cam in ((0, wa, cams[0]), (len(wa), wb, cams[1])):
            rows = loop_views.view_rows(np.arange(side, side + len(ids))).ravel()
            src = loop_views.points(rows, self.store.pixels)
            S = loop_views.depth.shape[0]
            src_conf = loop_views.conf.reshape(S, -1)[rows][:, self.store.pixels]
            src_z = loop_views.depth.reshape(S, -1)[rows][:, self.store.pixels]
            stored_z, stored_conf = (x[:, cam] for x in self.store.samples(ids))
            z = stored_z.reshape(-1, P).astype(np.float64)
            dst = backproject_samples(
                z, self.store.K[ids][:, cam].reshape(-1, 3, 3).astype(np.float64),
                self.store.T_chunk_cam[ids][:, cam].reshape(-1, 4, 4), self.hw,
                self.store.pixels)
            dst_conf = stored_conf.reshape(len(ids) * len(cam), P).astype(np.float32)
            aligned.append(align_samples(src, dst, src_conf, dst_conf, z, self.cfg.align,
                                         src_z))
        if aligned[0] is None or aligned[1] is None:
            return None
        T_b_a = aligned[1].T_dst_src @ aligned[0].T_dst_src.inverse()
        return LoopMeasurement(a, b, query, match, T_b_a, aligned[0], aligned[1],
                               query_camera, match_camera)

    def _frame(self, index: int) -> Frame:
        if index in self.buffer:
            return self.buffer[index]
        if index in self.images:
            return Frame(index, float(self.store.stamp_s[index]), self.images.get(index))
        if self.frame_lookup is not None:
            return self.frame_lookup(index)
        return Frame(index, float(self.store.stamp_s[index]))

    def _accept_consistent(self, k: int, measured: list[LoopMeasurement]) -> bool:
        """Pairwise consistency: a loop enters the graph once another loop between the same
        two stretches agrees with it; unconfirmed loops wait pcm_max_gap chunks."""
        gate, est = self.cfg.gate, self.graph.estimates
        scene = self._scene_depth()
        changed = False
        for m in measured:
            partners = [p for p in self.pending + list(self.loops.values())
                        if loop_gate.consistent(m, p, est, scene, gate)]
            self.pending.append(m)
            if not partners:
                continue
            for p in [m] + [p for p in partners if p in self.pending]:
                self.pending.remove(p)
                self._add_loop(p, scene)
                changed = True
        self.pending = [p for p in self.pending if p.a >= k - gate.pcm_max_gap]
        return changed

    def _add_loop(self, m: LoopMeasurement, scene: float):
        med_in, med_res = self._seq_medians()
        quality = max(1.0, max(m.align_a.median_rel_residual, m.align_b.median_rel_residual)
                      / med_res)
        sig = self._loop_sigmas(m.T_b_a, scene, quality)
        loop_id = self.graph.add_loop(Edge(m.b, m.a, m.T_b_a, sig))
        self.loops[loop_id] = m
        self.stats.loops_accepted += 1
        self.stats.added_pairs.append((m.query, m.match))
        self.stats.accepted_pairs = [(m.query, m.match) for m in self.loops.values()]

    def _optimise(self):
        self.graph.optimise()
        chi2 = {i: self.graph.chi2(self.graph.loops[i]) for i in self.graph.loops}
        bad = loop_gate.chi2_outliers(chi2, self.cfg.gate)
        for i in bad:
            self.graph.remove_loop(i)
            del self.loops[i]
            self.stats.loops_removed += 1
        if bad:
            self.graph.optimise()
        self.stats.accepted_pairs = [(m.query, m.match) for m in self.loops.values()]

    # -- map ---------------------------------------------------------------------------
    def _insert_map(self, k: int, views: ChunkViews, new: np.ndarray):
        cfg = self.cfg.map
        rows = views.view_rows(new).ravel()
        pixels = grid_pixels(views.depth.shape[1:], cfg.points_per_frame)
        S = views.depth.shape[0]
        conf = views.conf.reshape(S, -1)[rows][:, pixels]
        depth = views.depth.reshape(S, -1)[rows][:, pixels]
        usable = conf > 0
        if not usable.any():
            return
        keep = usable & (conf > cfg.conf_floor * np.median(conf[usable])) & (
            depth < cfg.max_depth_ratio * np.median(depth[usable]))
        points = views.points(rows, pixels)
        self.map.insert(points[keep], conf[keep], k, self.graph.estimates)


def pose_alignment(T_dst_cam: np.ndarray, T_src_cam: np.ndarray, scene: float) -> Sim3:
    """Fallback Sim(3) src -> dst from camera poses alone (no depth): Umeyama on each
    camera's centre and two points one scene depth along its optical and x axes.

    T_dst_cam, T_src_cam: (V, 4, 4) the same cameras in the two frames; scene: dst units
    """
    def anchors(T, d):
        c = T[:, :3, 3]
        return np.concatenate([c, c + d * T[:, :3, 2], c + d * T[:, :3, 0]])
    try:
        spread = [np.linalg.norm(np.diff(T[:, :3, 3], axis=0), axis=1).sum()
                  for T in (T_dst_cam, T_src_cam)]
        ratio = spread[1] / spread[0] if spread[0] > 0 else 1.0
        R, t, s = umeyama(anchors(T_src_cam, scene * ratio), anchors(T_dst_cam, scene))
        return Sim3(s, R, t)
    except DegenerateAlignment:
        return Sim3.identity()


def count_false(pairs: list, positions: np.ndarray, max_dist_m: float = 30.0) -> int:
    """How many (query, match) frame pairs are truly farther apart than max_dist_m.

    positions: (F, 3) ground-truth positions (evaluation only)
    """
    return int(sum(np.linalg.norm(positions[q] - positions[m]) > max_dist_m for q, m in pairs))

