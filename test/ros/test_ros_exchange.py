"""Two real rclpy processes exchange an Image, /tf_static and a da3_ros/RigDepth over Fast DDS.

ros_talker.py publishes messages derived from a seed; ros_listener.py prints one JSON line with
what it received. The listener starts only after the talker has published /tf_static, so the
static transform must arrive through TRANSIENT_LOCAL durability (a late joiner, as in tf2).
Every expected value below is recomputed here from the seed, not imported from the talker.
"""

import hashlib
import os
from pathlib import Path

import numpy as np
from late_joiner import talker_then_late_listener

HERE = Path(__file__).resolve().parent
SEED = 7
WAIT_S = 60.0  # deadline for each wait inside the nodes
STAMP = [1_700_000_000 + SEED, 123_456_789]  # [sec, nanosec] of the synchronised set
CAMERAS = [('front', 48, 64), ('rear', 24, 32)]  # (name, height px, width px)


def run_exchange(tmp_path: Path, test_name: str) -> dict:
    """Run talker, then listener (late joiner; ROS_DOMAIN_ID in 1..100); return the
    listener's JSON report."""
    ns, timeout = f'/da3_test_{os.getpid()}', ['--timeout', str(WAIT_S)]
    return talker_then_late_listener(
        tmp_path, test_name, 1, ['ros_talker.py', '--seed', str(SEED), '--ns', ns, *timeout],
        ['ros_listener.py', '--ns', ns, *timeout], WAIT_S)


def sha256(array: np.ndarray) -> str:
    """Hex sha256 of the array's bytes (native little-endian order)."""
    return hashlib.sha256(array.tobytes()).hexdigest()


def expected_camera(index: int, name: str, height: int, width: int) -> dict:
    """What the listener must report for camera `index`, derived from the seed only."""
    depth = np.fromfunction(lambda v, u: 1.0 + index + 0.05 * v + 0.001 * u, (height, width))
    depth = depth.astype(np.float32)
    depth[0, 0] = np.nan
    confidence = (np.arange(height * width).reshape(height, width) % 7 / 7.0).astype(np.float32)
    image = {
        'stamp': STAMP,
        'frame_id': f'{name}_optical',
        'height': height,
        'width': width,
        'encoding': '32FC1',
        'step': width * 4,
        'is_bigendian': 0,
        'size': height * width * 4,
    }
    focal_px = 500.0 + 10.0 * index
    return {
        'camera_name': name,
        'depth': dict(image, sha256=sha256(depth), nan_count=1),
        'confidence': dict(image, sha256=sha256(confidence), nan_count=0),
        'camera_info': {
            'stamp': STAMP,
            'frame_id': f'{name}_optical',
            'height': height,
            'width': width,
            'distortion_model': 'plumb_bob',
            'd': [0.1 * index, -0.05, 0.0, 0.0, 0.0],
            'k': [focal_px, 0.0, width / 2 - 0.5, 0.0, focal_px, height / 2 - 0.5, 0.0, 0.0, 1.0],
        },
        't_fixed_camera': {
            'translation': [1.0 + index, -2.0, 0.5 * SEED],
            'rotation_xyzw': [0.0, 0.0, 0.6, 0.8] if index else [0.0, 0.0, 0.0, 1.0],
        },
    }


def test_two_processes_exchange_image_tf_static_and_rig_depth(tmp_path, request):
    got = run_exchange(tmp_path, request.node.nodeid)
    assert sorted(got) == ['image', 'rig', 'tf_static']

    pixels = np.random.default_rng(SEED).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    assert got['image'] == {
        'stamp': STAMP,
        'frame_id': 'front_optical',
        'height': 480,
        'width': 640,
        'encoding': 'rgb8',
        'step': 1920,
        'is_bigendian': 0,
        'size': 480 * 640 * 3,
        'sha256': sha256(pixels),
    }

    assert got['tf_static'] == [
        {
            'stamp': [1_700_000_000 + SEED, 0],
            'frame_id': 'base_link',
            'child_frame_id': 'front_optical',
            'translation': [0.25, -0.125, 1.5 + 0.001 * SEED],
            'rotation_xyzw': [-0.5, 0.5, -0.5, 0.5],
        }
    ]

    rig = got['rig']
    assert rig['stamp'] == got['image']['stamp'] == STAMP
    fields = ('frame_id', 'model', 'is_metric', 'scale_factor')
    assert {key: rig[key] for key in fields} == {
        'frame_id': 'odom',
        'model': 'da3-small',
        'is_metric': True,
        'scale_factor': 1.5,
    }
    assert [cam['camera_name'] for cam in rig['cameras']] == [name for name, _, _ in CAMERAS]
    for index, (cam, spec) in enumerate(zip(rig['cameras'], CAMERAS, strict=True)):
        assert cam == expected_camera(index, *spec), spec[0]
