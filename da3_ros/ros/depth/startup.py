"""What the depth node does once, at start-up and after a live parameter change: load the rig
calibration, make (and optionally verify) the predictor, the output options, and the lines it
logs. Every start-up error is a ConfigError naming the parameter (the node exits 2)."""
from __future__ import annotations

from dataclasses import replace

from da3_ros.errors import ConfigError
from da3_ros.ros.depth.outputs import OutputOptions
from da3_ros.ros.depth.params import DepthConfig
from da3_ros.ros.depth.rig_calibration import RigCalibration, load_rig_calibration
from da3_ros.ros.depth.rig_tf import check_base_frame


def load_calibration(cfg: DepthConfig) -> RigCalibration | None:
    """rig.source yaml: the calibration file, with an entry per camera and rig.base_frame as
    its base frame; None for any other rig.source."""
    if cfg.rig_source != 'yaml':
        return None
    try:
        calibration = load_rig_calibration(cfg.rig_calibration_file)
        calibration.extrinsics([c.name for c in cfg.cameras])
        check_base_frame(calibration, cfg.rig_base_frame)
    except ConfigError as err:
        raise ConfigError(f"parameter 'rig.calibration_file': {err}") from err
    return calibration


def make_predictor(cfg: DepthConfig):
    """The configured Predictor; loading errors become ConfigErrors naming the parameter."""
    from da3_ros.engine.factory import make_predictor
    if cfg.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise ConfigError(f"parameter 'device': {cfg.device!r} but CUDA is not available")
    try:
        return make_predictor(cfg.model, cfg.backend, cfg.device, cfg.precision, cfg.model_file,
                              cfg.compile, process_res=cfg.process_res,
                              method=cfg.process_res_method,
                              align_to_input_scale=cfg.metric_mode != 'relative')
    except Exception as err:  # missing folder, unknown HF id, bad engine file, ...
        raise ConfigError(f"parameter 'model' ({cfg.model!r}, backend {cfg.backend}): "
                          f'{type(err).__name__}: {err}') from err


def verify_engine(cfg: DepthConfig, log) -> None:
    """verify_onnx set: the engine against ONNX Runtime on one seeded input (build-engine
    --verify); a mismatch or a missing ONNX Runtime is a ConfigError naming the parameter."""
    from da3_ros.engine.engine_verify import verify_engine
    try:
        diffs = verify_engine(cfg.model_file, cfg.verify_onnx, device=cfg.device)
    except Exception as err:  # EngineMismatch, no onnxruntime, an ONNX for another engine
        raise ConfigError(f"parameter 'verify_onnx': {type(err).__name__}: {err}") from err
    log.info('engine verified against ONNX Runtime (max relative): '
             + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))


def output_options(cfg: DepthConfig, model_name: str) -> OutputOptions:
    """What the pipeline builds from each set, from the node's configuration."""
    return OutputOptions(cfg.publish, cfg.output_resolution, cfg.cloud, cfg.remove_sky,
                         cfg.fused_voxel_size_m, cfg.pose_frame_suffix, model_name, cfg.nav)


def live_output_options(options: OutputOptions, cfg: DepthConfig) -> OutputOptions:
    """options with the live parameters of cfg (ros2 param set); the rest stays as started."""
    return replace(options, publish=cfg.publish, cloud=cfg.cloud, remove_sky=cfg.remove_sky,
                   fused_voxel_size_m=cfg.fused_voxel_size_m, nav=cfg.nav)


def startup_line(cfg: DepthConfig, backend, on_device: bool) -> str:
    """The one info line the node logs once it runs: model, backend, outputs, cameras, modes."""
    precision = getattr(backend, 'precision', None)
    names = [c.name for c in cfg.cameras]
    return (f'{backend.model_name} on {cfg.backend}/{cfg.device}'
            f'{f" {precision}" if precision else ""}{" compiled" * cfg.compile} '
            f'({"GPU-resident" if on_device else "host"} outputs), {len(names)} '
            f'cameras {names}, metric_mode {cfg.metric_mode}, pose_conditioning '
            f'{cfg.pose_conditioning}')


def device_check_text(check: list[str] | None) -> str:
    """The device path check's diagnostics value: not run, passed, or the differences."""
    return 'not run' if check is None else 'passed' if not check else f'failed: {check}'


def log_device_check(check: list[str], log) -> None:
    """The device path check's result, logged once: an error when the paths differ."""
    if check:
        log.error('device path check FAILED, the GPU messages differ from the host path: '
                  f'{check}')
    else:
        log.info("device path check passed: the first set's GPU messages equal the host "
                 "path's")
