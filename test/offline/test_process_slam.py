"""`da3-ros process --slam` on the real sample bags, as a real subprocess with a random-weight
DA3-SMALL at process_res 112 on the CPU; small chunks so that even 3 or 10 sets make two.

Independent readers check every file: evo (TUM, KITTI), a PLY header parser written here,
rosbags (sqlite3 and MCAP) and mcap-ros2-support (MCAP). Bad input leaves no output at all.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from process_cli import corrupt_copy, da3_ros, random_checkpoint
from scipy.spatial.transform import Rotation

from shared_data import DATA

SAMPLES = DATA / 'rosbag2_samples'
DGP = SAMPLES / 'dgp_multicam_6cam_mcap'
EUROC = SAMPLES / 'euroc_v1_01_stereo_imu_sqlite3'
DGP_CAMS = ['CAMERA_01', 'CAMERA_05', 'CAMERA_06', 'CAMERA_07', 'CAMERA_08', 'CAMERA_09']
MAP_FILES = ['map.ply', 'metadata.json', 'ros.json', 'trajectory.kitti', 'trajectory.tum',
             'trajectory_map.tum']

pytestmark = pytest.mark.skipif(not EUROC.is_dir(), reason=f'{SAMPLES} not present')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    return random_checkpoint(tmp_path_factory.mktemp('ckpt') / 'da3-small', seed=2)


def model_args(checkpoint: str) -> list[str]:
    return ['--model', checkpoint, '--device', 'cpu', '--process-res', '112']


def read_bag(path: Path) -> dict[str, list]:
    """topic -> [(log time ns, msg)] via rosbags."""
    from rosbags.highlevel import AnyReader

    out = defaultdict(list)
    with AnyReader([path]) as reader:
        for conn, t, raw in reader.messages():
            out[conn.topic].append((t, reader.deserialize(raw, conn.msgtype)))
    return out


def ns(stamp) -> int:
    return stamp.sec * 10**9 + stamp.nanosec


def matrix(translation, rotation_xyzw) -> np.ndarray:
    """(4, 4) from a translation and an x, y, z, w quaternion (scipy, not the package)."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(rotation_xyzw).as_matrix()
    T[:3, 3] = translation
    return T


def tf_matrix(transform) -> np.ndarray:
    t, q = transform.translation, transform.rotation
    return matrix([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


def pose_matrix(pose) -> np.ndarray:
    p, q = pose.position, pose.orientation
    return matrix([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])


def read_ply_vertices(path: Path) -> np.ndarray:
    """An independent binary little-endian PLY reader: header -> structured vertex array; the
    body must hold exactly the declared vertices."""
    data = path.read_bytes()
    end = data.index(b'end_header\n') + len(b'end_header\n')
    lines = data[:end].decode('ascii').splitlines()
    assert lines[0] == 'ply' and lines[1] == 'format binary_little_endian 1.0'
    element = [line.split() for line in lines if line.startswith('element')]
    assert len(element) == 1 and element[0][1] == 'vertex'
    types = {'float': '<f4', 'double': '<f8', 'uchar': 'u1', 'int': '<i4'}
    dtype = np.dtype([(line.split()[2], types[line.split()[1]]) for line in lines
                      if line.startswith('property')])
    count = int(element[0][2])
    assert len(data) - end == count * dtype.itemsize
    return np.frombuffer(data, dtype, count, end)


def check_map_folder(folder: Path, stamps_ns: list[int], chunks: int) -> dict:
    """The map folder against evo and the PLY reader; returns ros.json."""
    from evo.tools import file_interface

    assert sorted(p.name for p in folder.iterdir()) == MAP_FILES
    tum = file_interface.read_tum_trajectory_file(str(folder / 'trajectory.tum'))
    kitti = file_interface.read_kitti_poses_file(str(folder / 'trajectory.kitti'))
    assert tum.num_poses == kitti.num_poses == len(stamps_ns)      # one pose per input set
    np.testing.assert_allclose(tum.timestamps, np.array(stamps_ns) * 1e-9, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(kitti.poses_se3), np.array(tum.poses_se3), atol=1e-6)
    assert np.isfinite(np.array(tum.poses_se3)).all()
    meta = json.loads((folder / 'metadata.json').read_text())
    assert meta['num_frames'] == len(stamps_ns) and len(meta['chunks']) == chunks
    vertices = read_ply_vertices(folder / 'map.ply')
    assert vertices.dtype.names == ('x', 'y', 'z', 'weight')
    assert len(vertices) == meta['num_points'] >= 1
    assert all(np.isfinite(vertices[n]).all() for n in vertices.dtype.names)
    ros = json.loads((folder / 'ros.json').read_text())
    assert ros['stamps_ns'] == stamps_ns                              # exact input stamps
    return ros


def static_tf(bag: Path) -> dict[str, tuple[str, np.ndarray]]:
    """child -> (parent, T_parent_child) of the bag's /tf_static."""
    return {t.child_frame_id: (t.header.frame_id, tf_matrix(t.transform))
            for _, msg in read_bag(bag)['/tf_static'] for t in msg.transforms}


@pytest.fixture(scope='module')
def euroc_run(checkpoint, tmp_path_factory):
    """SLAM alone (no per-set depth), stereo EuRoC, 10 sets -> chunks [0, 6) and [4, 10)."""
    out = tmp_path_factory.mktemp('euroc')
    result = da3_ros('process', str(EUROC), *model_args(checkpoint), '--cameras',
                     '/cam0/image_raw', '/cam1/image_raw', '--slam', str(out / 'map'),
                     '--output-bag', str(out / 'bag'), '--storage', 'sqlite3',
                     '--chunk-size', '6', '--chunk-overlap', '2')
    stamps = [ns(m.header.stamp) for _, m in read_bag(EUROC)['/cam0/image_raw']]
    return result, out, stamps


def test_euroc_map_folder(euroc_run):
    result, out, stamps = euroc_run
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ['bag', 'map']     # nothing partial
    ros = check_map_folder(out / 'map', stamps, chunks=2)
    assert ros['frames'] == {'map': 'map', 'camera': 'cam0', 'base': 'imu0'}


def test_euroc_bag_has_tf_and_path_only(euroc_run):
    """No depth topics (no per-set forward); map -> imu0 (cam0's static root) at every set;
    the Path, TF and trajectory files describe one trajectory."""
    from evo.tools import file_interface

    result, out, stamps = euroc_run
    assert result.returncode == 0, result.stderr
    bag = read_bag(out / 'bag')
    assert sorted(bag) == ['/da3_slam/map', '/da3_slam/path', '/tf', '/tf_static']
    tfs = bag['/tf']
    assert [t for t, _ in tfs] == stamps
    assert all([(x.header.frame_id, x.child_frame_id) for x in m.transforms] == [('map', 'imu0')]
               for _, m in tfs)
    assert [ns(m.transforms[0].header.stamp) for _, m in tfs] == stamps
    T_map_imu = np.stack([tf_matrix(m.transforms[0].transform) for _, m in tfs])
    np.testing.assert_allclose(T_map_imu[0], np.eye(4), atol=1e-6)   # map = base at set 0
    (t_path, path), = bag['/da3_slam/path']
    assert t_path == stamps[-1] and path.header.frame_id == 'map'
    assert [ns(p.header.stamp) for p in path.poses] == stamps
    np.testing.assert_allclose(np.stack([pose_matrix(p.pose) for p in path.poses]), T_map_imu,
                               atol=1e-6)
    # T_map_imu = T_map_world T_world_cam0 T_cam0_imu, with T_imu_cam0 from the input bag
    parent, T_imu_cam0 = static_tf(EUROC)['cam0']
    assert parent == 'imu0' and static_tf(out / 'bag')['cam0'][0] == 'imu0'  # copied through
    T_map_world = np.array(json.loads((out / 'map' / 'ros.json').read_text())['T_map_world'])
    tum = file_interface.read_tum_trajectory_file(str(out / 'map' / 'trajectory.tum'))
    expected = T_map_world @ np.array(tum.poses_se3) @ np.linalg.inv(T_imu_cam0)
    np.testing.assert_allclose(T_map_imu, expected, atol=1e-5)
    (_, cloud), = bag['/da3_slam/map']
    meta = json.loads((out / 'map' / 'metadata.json').read_text())
    assert cloud.header.frame_id == 'map' and cloud.width * cloud.height == meta['num_points']


@pytest.fixture(scope='module')
def dgp_run(checkpoint, tmp_path_factory):
    """Depth and SLAM together over the 6-camera rig, MCAP, 3 sets -> chunks [0, 2), [1, 3)."""
    out = tmp_path_factory.mktemp('dgp')
    result = da3_ros('process', str(DGP), *model_args(checkpoint), '--slam', str(out / 'map'),
                     '--output-bag', str(out / 'bag'), '--storage', 'mcap', '--outputs',
                     'depth,tf', '--chunk-size', '2', '--chunk-overlap', '1')
    stamps = [ns(m.header.stamp) for _, m in read_bag(DGP)['/CAMERA_01/image_raw/compressed']]
    return result, out, stamps


def test_dgp_rig_map_folder_and_mcap(dgp_run):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    result, out, stamps = dgp_run
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ['bag', 'map']
    ros = check_map_folder(out / 'map', stamps, chunks=2)
    assert ros['frames'] == {'map': 'map', 'camera': 'CAMERA_01', 'base': 'LIDAR'}
    slam_tf, depth_tf, paths, depth = [], [], [], defaultdict(list)
    with open(out / 'bag' / 'bag.mcap', 'rb') as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _, channel, message, msg in reader.iter_decoded_messages(log_time_order=True):
            if channel.topic == '/tf':
                parents = {t.header.frame_id for t in msg.transforms}
                (slam_tf if parents == {'map'} else depth_tf).append(message.log_time)
            elif channel.topic == '/da3_slam/path':
                paths.append(msg)
            elif channel.topic.endswith('/da3/depth'):
                depth[channel.topic].append(message.log_time)
    assert slam_tf == depth_tf == stamps       # SLAM TF (map -> LIDAR) and the DA3 camera poses
    assert sorted(depth) == [f'/{c}/da3/depth' for c in DGP_CAMS]
    assert all(times == stamps for times in depth.values())
    (path,) = paths
    assert path.header.frame_id == 'map' and [ns(p.header.stamp) for p in path.poses] == stamps


def test_dgp_depth_is_one_forward_per_set(dgp_run, checkpoint):
    """With --slam the per-set depth is still one joint 6-view forward (not 6 single views)."""
    from da3_ros.engine.factory import make_predictor

    result, out, _ = dgp_run
    assert result.returncode == 0, result.stderr
    source, bag = read_bag(DGP), read_bag(out / 'bag')
    images = [cv2.cvtColor(cv2.imdecode(np.frombuffer(bytes(source[f'/{c}/image_raw/compressed']
                                                            [0][1].data), np.uint8),
                                        cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
              for c in DGP_CAMS]
    written = [bag[f'/{c}/da3/depth'][0][1] for c in DGP_CAMS]
    written = [np.frombuffer(bytes(m.data), '<f4').reshape(m.height, m.width) for m in written]
    predictor = make_predictor(checkpoint, 'torch', 'cpu', process_res=112)
    joint = predictor.predict(images).depth
    for v in range(len(DGP_CAMS)):
        np.testing.assert_allclose(written[v], joint[v], rtol=1e-4, equal_nan=True)
    alone = predictor.predict(images[:1]).depth[0]      # what a per-camera forward gives
    assert np.nanmax(np.abs(alone - written[0]) / np.abs(written[0])) > 1e-3


def corrupt_bag(path: Path) -> Path:
    """The EuRoC bag with its sqlite3 file overwritten by garbage after the first 100 bytes."""
    return corrupt_copy(EUROC, f'{EUROC.name}.db3', path, seed=3)


def single_image_folder(path: Path) -> Path:
    path.mkdir()
    cv2.imwrite(str(path / '0.png'), np.full((48, 64, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize('make, text', [
    (corrupt_bag, 'cannot read bag'),
    (single_image_folder, 'SLAM needs at least 2 camera sets'),  # fails at the very end
], ids=['corrupt_bag', 'one_set'])
def test_bad_input_exits_3_and_leaves_nothing(make, text, checkpoint, tmp_path):
    source = make(tmp_path / 'input')
    out = tmp_path / 'out'
    out.mkdir()
    result = da3_ros('process', str(source), *model_args(checkpoint), '--slam',
                     str(out / 'map'), '--output-bag', str(out / 'bag'), '--npy-dir',
                     str(out / 'npy'))
    assert result.returncode == 3, result.stderr
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if 'ERROR' in line]
    assert len(errors) == 1 and text in errors[0], result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize('args, code', [
    (['--slam', 'MAP', '--chunk-size', '4', '--chunk-overlap', '4'], 3),
    (['--output-bag', 'BAG', '--chunk-size', '4'], 2),          # chunk options need --slam
    (['--output-bag', 'BAG', '--outputs', ''], 2),             # nothing to write
])
def test_bad_slam_options(args, code, tmp_path):
    """The CLI entry in-process (these fail before any model or input is read)."""
    from da3_ros.cli import main

    out = tmp_path / 'out'
    out.mkdir()
    args = [str(out / a.lower()) if a in ('MAP', 'BAG') else a for a in args]
    try:
        returned = main(['process', str(EUROC), '--model', 'x', '--device', 'cpu', *args])
    except SystemExit as exit_:          # argparse usage errors
        returned = exit_.code
    assert returned == code
    assert list(out.iterdir()) == []
