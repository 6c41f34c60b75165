"""Check a built TensorRT engine against its ONNX file run by ONNX Runtime.

    diffs = verify_engine('engines/x.engine', 'x.onnx', tolerance=5e-2)   # {output: rel diff}

Both run the same seeded input (random ImageNet-normalised images, and a valid camera encoding
for camera-conditioned files) with the engine's opt_views views. The measure per output is
max |engine - onnx| / max |onnx|; `EngineMismatch` (a CheckpointError) when one exceeds the
tolerance. This is how a wrong engine shows itself: DA3 on TensorRT 10.3 (Jetson) has been
reported to give depth whose scale changes from frame to frame, fixed by a newer TensorRT.
"""
from __future__ import annotations

import os

import numpy as np

from da3_ros.errors import CheckpointError

# default tolerances by precision: fp32 engines match to float rounding (and TF32 is off);
# fp16 engines differ by half-precision rounding through 12+ transformer blocks
TOLERANCES = {'fp32': 1e-3, 'fp16': 5e-2}


class EngineMismatch(CheckpointError):
    """The engine's outputs differ from ONNX Runtime's beyond the tolerance."""


def relative_differences(reference: dict[str, np.ndarray], got: dict[str, np.ndarray]
                         ) -> dict[str, float]:
    """{name: max |got - ref| / max |ref|} over the reference's outputs (inf if non-finite)."""
    diffs = {}
    for name, ref in reference.items():
        ref = np.asarray(ref, np.float64)
        out = np.asarray(got[name], np.float64)
        if out.shape != ref.shape:
            raise EngineMismatch(f'output {name}: engine shape {out.shape}, ONNX {ref.shape}')
        scale = np.abs(ref).max()
        err = np.abs(out - ref).max()
        diffs[name] = float(err / scale) if scale > 0 else float(err)
        if not np.isfinite(out).all():
            diffs[name] = float('inf')
    return diffs


def check_differences(diffs: dict[str, float], tolerance: float, label: str) -> None:
    """EngineMismatch naming every output above the tolerance."""
    bad = {k: v for k, v in diffs.items() if not v <= tolerance}
    if bad:
        text = ', '.join(f'{k} {v:.2e}' for k, v in bad.items())
        raise EngineMismatch(f'{label} differs from ONNX Runtime beyond {tolerance:g} '
                             f'(max relative): {text}')


def sample_inputs(inputs: tuple[str, ...], views: int, height: int, width: int,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded graph inputs: images N(0, 1), pose_enc of cameras around a 60 degree view."""
    rng = np.random.default_rng(seed)
    feeds = {'images': rng.standard_normal((1, views, 3, height, width)).astype(np.float32)}
    if 'pose_enc' in inputs:
        pose = np.zeros((1, views, 9), np.float32)
        pose[..., :3] = rng.uniform(-0.5, 0.5, (1, views, 3))     # translations
        pose[..., 6] = 1.0                                        # identity quaternion (xyzw)
        pose[..., 7:] = 1.047                                     # fov y, x (rad)
        feeds['pose_enc'] = pose
    return feeds


def verify_engine(engine_path: str | os.PathLike, onnx_path: str | os.PathLike,
                  tolerance: float | None = None, views: int | None = None,
                  device: str = 'cuda', seed: int = 0) -> dict[str, float]:
    """Run the engine and the ONNX file on the same input; the relative differences.

    tolerance: default TOLERANCES[engine precision]; views: default the profile's opt_views
    Raises EngineMismatch beyond the tolerance, TensorRTUnavailable without TensorRT 10.
    """
    import torch

    from da3_ros.engine.onnx_runtime import OnnxModel
    from da3_ros.engine.tensorrt_backend import TensorRTBackend

    backend = TensorRTBackend(engine_path, device=device)
    key = backend.key
    tolerance = TOLERANCES[key.precision] if tolerance is None else float(tolerance)
    views = key.opt_views if views is None else int(views)
    feeds = sample_inputs(key.inputs, views, key.height, key.width, seed)
    model = OnnxModel(onnx_path, expect_model=key.model, expect_hw=(key.height, key.width))
    reference = model.run(feeds['images'], feeds.get('pose_enc'))
    got = backend.run_graph({k: torch.from_numpy(v) for k, v in feeds.items()})
    diffs = relative_differences(reference, {k: v.cpu().numpy() for k, v in got.items()})
    check_differences(diffs, tolerance, f'{backend.path.name} ({key.precision}, {views} views)')
    return diffs
