"""A small pinhole scene shared by the point tests: random depth with a NaN and a zero, colours,
confidence and a sky mask, and its closed-form back-projection (pixel centres at integer u, v)."""
import numpy as np

H, W = 24, 32
K = np.array([[40.0, 0.0, 15.3], [0.0, 42.0, 11.7], [0.0, 0.0, 1.0]])


def make_scene(rng: np.random.Generator) -> tuple:
    """depth (H, W) 0.5..20 m with a NaN and a zero; rgb; confidence 0..1; sky = top 4 rows."""
    depth = rng.uniform(0.5, 20.0, (H, W)).astype(np.float32)
    depth[3, 5], depth[10, 20] = np.nan, 0.0
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    confidence = rng.uniform(0.0, 1.0, (H, W)).astype(np.float32)
    sky = np.zeros((H, W), bool)
    sky[:4] = True
    return depth, rgb, confidence, sky


def closed_form(depth: np.ndarray) -> np.ndarray:
    """X = (u - cx) z / fx, Y = (v - cy) z / fy, Z = z; u column, v row. (H, W, 3) float64."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    z = depth.astype(np.float64)
    return np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], axis=-1)
