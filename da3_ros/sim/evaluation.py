"""Trajectory metrics through evo (ATE after Sim(3) alignment, RPE per distance).

evo is a test/benchmark dependency only, so it is imported inside the functions.
"""
from __future__ import annotations

import numpy as np


def _trajectory(T: np.ndarray, stamps_s: np.ndarray):
    from evo.core.trajectory import PoseTrajectory3D
    return PoseTrajectory3D(poses_se3=list(T), timestamps=np.asarray(stamps_s, np.float64))


def ate_rmse_m(T_gt: np.ndarray, T_est: np.ndarray, stamps_s: np.ndarray) -> float:
    """RMSE of positions after Sim(3) Umeyama alignment (evo_ape -a -s). (F, 4, 4) each."""
    from evo.core import metrics
    ref, est = _trajectory(T_gt, stamps_s), _trajectory(T_est, stamps_s)
    est.align(ref, correct_scale=True)
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))
    return float(ape.get_statistic(metrics.StatisticsType.rmse))


def rpe_per_100m(T_gt: np.ndarray, T_est: np.ndarray, stamps_s: np.ndarray,
                 delta_m: float = 100.0) -> tuple[float, float]:
    """Mean translation (m) and rotation (deg) RPE over `delta_m` segments, after Sim(3)
    alignment (evo_rpe -a -s --delta 100 --delta_unit m)."""
    from evo.core import metrics
    ref, est = _trajectory(T_gt, stamps_s), _trajectory(T_est, stamps_s)
    est.align(ref, correct_scale=True)
    out = []
    relations = (metrics.PoseRelation.translation_part, metrics.PoseRelation.rotation_angle_deg)
    for relation in relations:
        rpe = metrics.RPE(relation, delta_m, metrics.Unit.meters, all_pairs=False)
        rpe.process_data((ref, est))
        out.append(float(rpe.get_statistic(metrics.StatisticsType.mean)))
    return out[0], out[1]
