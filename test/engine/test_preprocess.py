"""Preprocessing parity with the official DA3 InputProcessor / API."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from da3_ros.engine.preprocess import (
    IMAGENET_STD,
    METHODS,
    as_rgb,
    mixed_sizes_note,
    normalize_extrinsics,
    plan_resize,
    preprocess,
    preprocess_torch,
)
from da3_ros.errors import ConfigError, InputError
from official_api import official_normalize_extrinsics, official_preprocess

DATA = Path('/work/shared/data')
NUSCENES = sorted((DATA / 'nuscenes_mini_6cam_sample/samples').glob('*.jpg'))
SOH = sorted((DATA / 'da3_examples/SOH').glob('*.png'))
ARGO = DATA / 'argoverse1_stereo_disparity_gt/stereo_front_left_rect_1.jpg'
TORCH_MAX_U8, TORCH_MEAN_U8 = 2.0, 0.01   # measured: max 1, mean <= 0.001 (uint8 units)

# (W, H, method, network (H, W), fx, fy, cx, cy) for K = [1000 0 W/2; 0 1000 H/2]
TABLE = [
    (1600, 1200, 'upper_bound_resize', (378, 504), 315, 315, 252, 189),
    (1280, 720, 'upper_bound_resize', (280, 504), 393.75, 388.8889, 252, 140),
    (1280, 720, 'upper_bound_crop', (280, 504), 393.75, 394.4444, 252, 140),
    (1280, 720, 'lower_bound_resize', (504, 896), 700, 700, 448, 252),
    (640, 480, 'upper_bound_resize', (378, 504), 787.5, 787.5, 252, 189),
    (300, 200, 'upper_bound_resize', (336, 504), 1680, 1680, 252, 168),
]
CASES = [(1600, 1200, 'upper_bound_resize')] + [(1280, 720, m) for m in METHODS] + [
    (640, 480, 'upper_bound_resize'), (640, 480, 'lower_bound_crop'),
    (300, 200, 'upper_bound_resize'), (300, 200, 'upper_bound_crop'),
]


def need_data(path: Path):
    if not path.exists():
        pytest.skip(f'{path} not available')


@functools.cache
def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert('RGB'))


def real_image(w: int, h: int) -> np.ndarray:
    """A w x h crop of a real photo (argoverse 2464x2056 for big ones, else nuScenes)."""
    src = ARGO if h > 900 else NUSCENES[0]
    need_data(src)
    img = load(src)
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[top:top + h, left:left + w])


def synthetic_image(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Noise plus a smooth ramp: worst case for rounding and for saturation at 0 / 255."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    noise = rng.integers(-60, 61, (h, w, 3))
    return np.clip(ramp + noise, 0, 255).astype(np.uint8)


def pinhole(w: int, h: int, f: float = 1000.0) -> np.ndarray:
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=np.float32)


def assert_matches_official(images, method, process_res=504):
    Ks = np.stack([pinhole(im.shape[1], im.shape[0]) for im in images])
    Ks[:, 0, 1] = 0.5   # a skew, to check that row 0 is scaled as a whole
    ref_imgs, ref_K = official_preprocess(list(images), Ks.copy(), process_res, method)
    out = preprocess(list(images), process_res, method)
    assert out.images.shape == (1, *ref_imgs.shape)
    assert out.images.dtype == torch.float32
    assert (out.images[0] - ref_imgs).abs().max().item() <= 1e-6
    ours_K = out.scale_intrinsics(Ks)
    np.testing.assert_allclose(ours_K, ref_K.numpy(), rtol=0, atol=1e-5)
    return out, ours_K


@pytest.mark.parametrize('w, h, method, net_hw, fx, fy, cx, cy', TABLE)
def test_plan_and_intrinsics_match_design_table(w, h, method, net_hw, fx, fy, cx, cy):
    plan = plan_resize(h, w, 504, method)
    assert plan.network_hw == net_hw
    out = preprocess([synthetic_image(w, h)], 504, method)
    K = out.scale_intrinsics(pinhole(w, h)[None])[0]
    np.testing.assert_allclose([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], [fx, fy, cx, cy],
                               rtol=1e-5)


def test_plan_two_stage_and_crop_fields():
    p = plan_resize(720, 1280, 504, 'upper_bound_resize')
    assert (p.bound_hw, p.network_hw, p.two_stage) == ((284, 504), (280, 504), True)
    c = plan_resize(720, 1280, 504, 'upper_bound_crop')
    assert (c.bound_hw, c.network_hw, c.crop_top, c.crop_left) == ((284, 504), (280, 504), 2, 0)
    assert c.scale_y == pytest.approx(284 / 720) and p.scale_y == pytest.approx(280 / 720)
    assert plan_resize(504, 378, 504).bound_hw == (504, 378)   # already at target: untouched


@pytest.mark.parametrize('source', ['real', 'synthetic'])
@pytest.mark.parametrize('w, h, method', CASES)
def test_single_view_matches_official(w, h, method, source):
    img = real_image(w, h) if source == 'real' else synthetic_image(w, h)
    assert_matches_official([img], method)


@pytest.mark.parametrize('method', METHODS)
def test_real_photos_full_size_match_official(method):
    need_data(NUSCENES[0]) if NUSCENES else pytest.skip('nuScenes sample not available')
    assert_matches_official([load(NUSCENES[0]), load(NUSCENES[1])], method)


@pytest.mark.parametrize('method', ['upper_bound_resize', 'lower_bound_crop'])
def test_mixed_sizes_common_centre_crop_matches_official(method):
    views = [real_image(1600, 900), synthetic_image(1208, 680, 1), real_image(640, 480),
             np.ascontiguousarray(synthetic_image(680, 1208, 2))]
    out, _ = assert_matches_official(views, method)
    sizes = [p.network_hw for p in out.plans]
    assert len(set(sizes)) > 1
    H, W = out.images.shape[-2:]
    assert (H, W) == (min(h for h, _ in sizes), min(w for _, w in sizes))
    assert any(c != (0, 0) for c in out.crops) and out.crops == out.crops_ixt


def random_w2c(S: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    T = np.tile(np.eye(4), (S, 1, 1))
    for v in range(S):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        T[v, :3, :3] = q * np.sign(np.linalg.det(q))
        T[v, :3, 3] = rng.normal(scale=3.0, size=3)
    return T


@pytest.mark.parametrize('S', [1, 2, 3, 5])
def test_normalize_extrinsics_matches_official(S):
    T = random_w2c(S, seed=S)
    ours, scale = normalize_extrinsics(T)
    ref = official_normalize_extrinsics(T)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5 * max(1.0, np.abs(ref).max()))
    np.testing.assert_allclose(ours[0], np.eye(4), atol=1e-12)
    if S <= 2:
        assert scale == 0.1   # the 2-view quirk: median of [0, d] is 0, clamped to 0.1


def test_normalize_extrinsics_two_views_multiplies_translation_by_ten():
    T = np.tile(np.eye(4), (2, 1, 1))
    T[1, :3, 3] = [0.5, 0.0, 0.0]
    ours, scale = normalize_extrinsics(T)
    assert scale == 0.1
    np.testing.assert_allclose(ours[1, :3, 3], [5.0, 0.0, 0.0])


@pytest.mark.parametrize('images, match', [
    ([], 'non-empty'),
    ([synthetic_image(40, 30), synthetic_image(40, 30).astype(np.float32)], 'view 1: dtype'),
    ([np.zeros((30, 40, 2), np.uint8)], r'view 0: shape .*convert'),
    ([np.zeros((3, 30, 40), np.uint8)], r'view 0: shape .*channels-first'),
    ([synthetic_image(40, 13)], r'13x40 \(h x w\) is smaller than one 14 px network patch'),
    ([synthetic_image(40, 30), np.zeros((0, 40, 3), np.uint8)], 'view 1: zero-size'),
    ([Image.new('RGB', (40, 30))], 'view 0: expected a numpy array'),
])
def test_preprocess_rejects_bad_images(images, match):
    with pytest.raises(InputError, match=match):
        preprocess(images)


def test_grey_and_rgba_are_converted_as_the_official_pil_convert():
    rgb = synthetic_image(40, 30)
    rgba = np.concatenate([rgb, np.full((30, 40, 1), 7, np.uint8)], axis=2)
    grey = rgb[..., 1].copy()
    for img in (grey, grey[..., None], rgba):
        ours = as_rgb(0, img)
        np.testing.assert_array_equal(ours, np.asarray(Image.fromarray(np.squeeze(img))
                                                       .convert('RGB')))
        np.testing.assert_array_equal(as_rgb(0, torch.from_numpy(img)).numpy(), ours)
        np.testing.assert_array_equal(preprocess([img]).images, preprocess([ours]).images)


def test_views_below_one_patch_are_refused_at_any_process_res():
    for h, w in ((13, 500), (500, 13), (1, 1)):
        for method in METHODS:
            with pytest.raises(InputError, match='smaller than one 14 px network patch'):
                plan_resize(h, w, 504, method)
    assert plan_resize(14, 14, 504).network_hw == (504, 504)   # one patch is enough


def test_mixed_sizes_note_names_views_and_the_processing_size():
    assert mixed_sizes_note(['a', 'b'], [(48, 64), (48, 64)], 56) is None
    sizes = [(900, 1600), (480, 640)]
    note = mixed_sizes_note(['front', 'usb'], sizes, 504)
    images = [np.zeros((h, w, 3), np.uint8) for h, w in sizes]
    H, W = preprocess(images, 504).images.shape[-2:]
    assert (H, W) == (280, 504)
    assert 'front 900x1600 -> 280x504, usb 480x640 -> 378x504 (cropped)' in note, note
    assert f'every view at {H}x{W}' in note and 'process_res 504' in note, note


def test_config_and_other_input_errors():
    img = synthetic_image(64, 48)
    with pytest.raises(ConfigError, match='process_res_method'):
        preprocess([img], method='bilinear')
    for bad in (0, 13, 504.0, True):
        with pytest.raises(ConfigError, match='process_res'):
            plan_resize(48, 64, bad)
    with pytest.raises(InputError, match='each side must reach'):
        plan_resize(10, 5000, 504, 'upper_bound_crop')
    out = preprocess([img])
    with pytest.raises(InputError, match=r'\(1, 3, 3\)'):
        out.scale_intrinsics(np.eye(3))
    T = np.tile(np.eye(4), (3, 1, 1))
    T[2, 0, 3] = np.nan
    with pytest.raises(InputError, match='NaN'):
        normalize_extrinsics(T)
    T[2, 0, 3], T[1, 3, 0] = 0.0, 1.0
    with pytest.raises(InputError, match=r'views \[1\]'):
        normalize_extrinsics(T)
    with pytest.raises(InputError, match='uint8'):
        preprocess_torch(torch.zeros(1, 8, 8, 3))
    with pytest.raises(InputError, match=r'\(S, H, W, 3\)'):
        preprocess_torch(torch.zeros(8, 8, 3, dtype=torch.uint8))


def torch_cases():
    cases = [(p, m) for p in NUSCENES[:1] + SOH[:1] for m in METHODS]
    return cases + [(None, 'upper_bound_resize'), (None, 'lower_bound_crop')]


@pytest.mark.parametrize('path, method', torch_cases())
def test_torch_variant_within_tolerance(path, method):
    if path is None:   # enlargement: a real 300x200 crop and a 640x480 crop, bicubic path
        imgs = [real_image(300, 200)] if method.endswith('crop') else [real_image(640, 480)]
    else:
        imgs = [load(path)] * 2   # S = 2 views of the same size
    ref = preprocess(imgs, 504, method).images
    x = torch.from_numpy(np.stack(imgs))
    out = preprocess_torch(x, 504, method)
    assert out.shape == ref.shape and out.dtype == torch.float32
    std_u8 = torch.tensor(IMAGENET_STD)[:, None, None] * 255
    diff_u8 = (out - ref).abs() * std_u8
    assert diff_u8.max().item() <= TORCH_MAX_U8
    assert diff_u8.mean().item() <= TORCH_MEAN_U8
