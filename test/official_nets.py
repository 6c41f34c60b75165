"""The official DA3 networks (depth-anything-3==0.1.1) built as references for parity tests.

The official package is used only in tests; scripts/setup.sh installs it with --no-deps.
Networks are compared in fp32 on CPU with the same state dict on both sides.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from unittest import mock

import torch
from torch import nn

from da3_ros.model import VARIANTS, build

PARITY_TOL = 1e-4   # max |ours - official| / max |official|


def official_config(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from depth_anything_3.cfg import load_config
        from depth_anything_3.registry import MODEL_REGISTRY
    return load_config(MODEL_REGISTRY[name])


@contextlib.contextmanager
def no_init():
    """Skip parameter initialisation (fast builds of the 1.4 B-parameter variants)."""
    from torch.nn.modules.conv import _ConvNd
    targets = [nn.Linear, _ConvNd, nn.LayerNorm]
    with contextlib.ExitStack() as stack:
        for cls in targets:
            stack.enter_context(mock.patch.object(cls, 'reset_parameters', lambda self: None))
        yield


def _shrink_config(cfg, depth: int, out_layers, alt_start: int):
    """Reduce a backbone config to `depth` blocks (the vit_* builders take a depth kwarg)."""
    cfg.out_layers = list(out_layers)
    if cfg.alt_start != -1:
        cfg.alt_start = cfg.qknorm_start = cfg.rope_start = alt_start
    return depth


@contextlib.contextmanager
def _patched_depths(depths: dict[str, int]):
    """Make the official vit_* builders use the given depths (keyed by vits/vitb/vitl/vitg)."""
    from depth_anything_3.model.dinov2 import dinov2 as official_dinov2
    builders = {'vits': 'vit_small', 'vitb': 'vit_base', 'vitl': 'vit_large',
                'vitg': 'vit_giant2'}
    with contextlib.ExitStack() as stack:
        for vit, depth in depths.items():
            fn = getattr(official_dinov2, builders[vit])
            stack.enter_context(mock.patch.object(official_dinov2, builders[vit],
                                                  functools.partial(fn, depth=depth)))
        yield


# Reduced-depth versions of the big backbones; each keeps its family's quirks (SwiGLU, an odd
# alt_start so that the camera token enters at a global block for GIANT, mixed output blocks).
SHRUNK = {
    'vitg': dict(depth=8, out_layers=(3, 5, 6, 7), alt_start=3),
    'vitl': dict(depth=6, out_layers=(2, 3, 4, 5), alt_start=2),
    'vitl_mono': dict(depth=5, out_layers=(1, 2, 3, 4), alt_start=-1),
}


def _shrink_spec(spec, how):
    bb = dataclasses.replace(spec.backbone, depth=how['depth'], out_layers=how['out_layers'],
                             alt_start=how['alt_start'] if spec.backbone.alt_start != -1 else -1)
    return dataclasses.replace(spec, backbone=bb)


def build_pair(name: str, shrink: dict[str, str] | None = None):
    """(official, ours) for a variant, optionally with reduced backbones, eval mode, fp32.

    shrink maps a spec role ('model', 'anyview', 'metric') to a SHRUNK key.
    """
    from depth_anything_3.cfg import create_object
    cfg = official_config(name)
    spec = VARIANTS[name]
    depths = {}
    if shrink:
        for role, key in shrink.items():
            how = SHRUNK[key]
            sub = cfg if role == 'model' else cfg[role]
            depths[sub.net.name] = _shrink_config(sub.net, how['depth'], how['out_layers'],
                                                  how['alt_start'])
            if role == 'model':
                spec = _shrink_spec(spec, how)
            else:
                spec = dataclasses.replace(spec, **{role: _shrink_spec(getattr(spec, role), how)})
    # default init draws from the global RNG: seed it so results do not depend on test order
    torch.manual_seed(0)
    with _patched_depths(depths), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        official = create_object(cfg).eval()
    ours = build(spec).eval()
    return official, ours


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


def assert_outputs_match(ours, official: dict, keys, tol: float = PARITY_TOL):
    for key in keys:
        assert official[key].abs().max() > 0, f'{key}: the reference is all zeros'
        err = rel_err(getattr(ours, key), official[key])
        assert err <= tol, f'{key}: relative error {err:.2e} > {tol:.0e}'
