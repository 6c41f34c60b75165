"""`da3-ros process` on an image folder and a video, and on bad input: the exit code, one
error line, and no output (not even a partial one) left behind."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from process_cli import corrupt_copy, da3_ros, random_checkpoint

from shared_data import DATA

SAMPLES = DATA / 'rosbag2_samples'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    return random_checkpoint(tmp_path_factory.mktemp('ckpt') / 'da3-small', seed=1)


def model_args(checkpoint: str) -> list[str]:
    return ['--model', checkpoint, '--device', 'cpu', '--process-res', '112']


def frames(count: int, rng) -> list[np.ndarray]:
    """Smooth random BGR frames (96 x 128), so JPEG / MJPG keep them recognisable."""
    small = rng.integers(0, 255, size=(count, 6, 8, 3), dtype=np.uint8)
    return [cv2.resize(f, (128, 96), interpolation=cv2.INTER_CUBIC) for f in small]


def test_image_folder_to_npy(checkpoint, tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    for k, frame in enumerate(frames(3, np.random.default_rng(0))):
        cv2.imwrite(str(images / f'{k:03d}.png'), frame)
    (images / 'notes.txt').write_text('not an image')
    result = da3_ros('process', str(images), *model_args(checkpoint), '--npy-dir',
                     str(tmp_path / 'npy'), '--fps', '5', '--output-resolution', 'input')
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / 'npy' / 'camera').iterdir())
    assert [f.name for f in files] == ['0.npy', '200000000.npy', '400000000.npy']  # 5 Hz
    for f in files:
        depth = np.load(f)
        assert depth.dtype == np.float32 and depth.shape == (96, 128)


def test_video_to_bag(checkpoint, tmp_path):
    from rosbags.highlevel import AnyReader

    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 20.0, (128, 96))
    for frame in frames(4, np.random.default_rng(1)):
        writer.write(frame)
    writer.release()
    out = tmp_path / 'bag'
    result = da3_ros('process', str(video), *model_args(checkpoint), '--output-bag', str(out),
                     '--storage', 'sqlite3', '--frame-id', 'cam_optical')
    assert result.returncode == 0, result.stderr
    with AnyReader([out]) as reader:
        depth = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()
                 if c.topic == '/camera/da3/depth']
        topics = {c.topic for c in reader.connections}
    assert [d.header.stamp.nanosec for d in depth] == [0, 50_000_000, 100_000_000, 150_000_000]
    assert {d.header.frame_id for d in depth} == {'cam_optical'}
    assert {'/camera/da3/points', '/da3/points', '/da3/rig_depth', '/tf'} <= topics
    assert '/tf_static' not in topics  # nothing to copy through


def empty_bag(path: Path, topic: str | None = None) -> Path:
    """A valid rosbag2 with no messages, or with one std_msgs/String on `topic`."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    with Writer(path, version=9) as writer:
        if topic:
            conn = writer.add_connection(topic, 'std_msgs/msg/String', typestore=store)
            string = store.types['std_msgs/msg/String']
            writer.write(conn, 1, store.serialize_cdr(string(data='hi'), 'std_msgs/msg/String'))
    return path


def corrupt_mcap_bag(path: Path) -> Path:
    return corrupt_copy(SAMPLES / 'dgp_multicam_6cam_mcap', 'dgp_multicam_6cam_mcap.mcap', path,
                        seed=2)


def unknown_storage_bag(path: Path) -> Path:
    shutil.copytree(SAMPLES / 'euroc_v1_01_stereo_imu_sqlite3', path)
    meta = path / 'metadata.yaml'
    meta.chmod(0o644)
    meta.write_text(meta.read_text().replace('storage_identifier: sqlite3',
                                             'storage_identifier: rocksdb'))
    return path


BAD_INPUTS = {
    'missing': (lambda tmp: tmp / 'nope', 'does not exist'),
    'empty_bag': (lambda tmp: empty_bag(tmp / 'empty'), 'holds no messages'),
    'no_cameras': (lambda tmp: empty_bag(tmp / 'chat', '/chatter'), 'no camera topics'),
    'corrupt_video': (lambda tmp: (tmp / 'x.avi').write_bytes(b'\0garbage' * 100) and
                      tmp / 'x.avi', 'OpenCV can open'),
    'corrupt_mcap': (lambda tmp: corrupt_mcap_bag(tmp / 'corrupt'), 'cannot read bag'),
    'unknown_storage': (lambda tmp: unknown_storage_bag(tmp / 'rocks'), 'cannot read bag'),
    'empty_folder': (lambda tmp: (tmp / 'none').mkdir() or tmp / 'none', 'holds no images'),
}


@pytest.mark.parametrize('case', sorted(BAD_INPUTS))
def test_bad_input_exits_3_and_leaves_nothing(case, tmp_path):
    make, text = BAD_INPUTS[case]
    source = make(tmp_path)
    out = tmp_path / 'out'
    out.mkdir()
    result = da3_ros('process', str(source), '--model', str(tmp_path / 'no_model'), '--device',
                     'cpu', '--output-bag', str(out / 'bag'), '--npy-dir', str(out / 'npy'))
    assert result.returncode == 3, result.stderr
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if 'ERROR' in line]
    assert len(errors) == 1 and text in errors[0], result.stderr
    assert list(out.iterdir()) == []


def test_missing_model_exits_4_and_leaves_nothing(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    result = da3_ros('process', str(SAMPLES / 'sun3d_3dmatch_rgbd_mcap'), '--model',
                     str(tmp_path / 'no_model'), '--device', 'cpu', '--output-bag',
                     str(out / 'bag'))
    assert result.returncode == 4, result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize('args, code', [
    (['--storage', 'rocksdb'], 2),                 # argparse: not a choice
    (['--outputs', 'depth,colour'], 3),            # unknown output name
    ([], 2),                                       # no output at all: usage
])
def test_bad_options(args, code, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    bag_args = [] if not args else ['--output-bag', str(out / 'bag')]
    result = da3_ros('process', str(SAMPLES / 'sun3d_3dmatch_rgbd_mcap'), '--model', 'x',
                     '--device', 'cpu', *bag_args, *args)
    assert result.returncode == code, result.stderr
    assert list(out.iterdir()) == []


def test_existing_output_is_kept_without_overwrite(tmp_path):
    (tmp_path / 'bag').mkdir()
    (tmp_path / 'bag' / 'mine.txt').write_text('keep')
    result = da3_ros('process', str(SAMPLES / 'sun3d_3dmatch_rgbd_mcap'), '--model', 'x',
                     '--device', 'cpu', '--output-bag', str(tmp_path / 'bag'))
    assert result.returncode == 3 and 'exists' in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag']
    assert (tmp_path / 'bag' / 'mine.txt').read_text() == 'keep'
