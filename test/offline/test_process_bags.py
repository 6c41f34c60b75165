"""`da3-ros process` on the real sample bags (../shared/data/rosbag2_samples), run as a real
subprocess with a random-weight DA3-SMALL at process_res 112 on the CPU.

Output bags are read back with rosbags and (MCAP) with mcap-ros2-support; the clouds must be
the back-projection of the depth through the CameraInfo in the same bag.
"""
from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from process_cli import da3_ros, random_checkpoint

from shared_data import DATA

SAMPLES = DATA / 'rosbag2_samples'
DGP = SAMPLES / 'dgp_multicam_6cam_mcap'
EUROC = SAMPLES / 'euroc_v1_01_stereo_imu_sqlite3'
SUN3D = SAMPLES / 'sun3d_3dmatch_rgbd_mcap'
DGP_CAMS = ['CAMERA_01', 'CAMERA_05', 'CAMERA_06', 'CAMERA_07', 'CAMERA_08', 'CAMERA_09']

pytestmark = pytest.mark.skipif(not DGP.is_dir(), reason=f'{SAMPLES} not present')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    return random_checkpoint(tmp_path_factory.mktemp('ckpt') / 'da3-small', seed=0)


def model_args(checkpoint: str) -> list[str]:
    # --max-range: random weights give depths of any size; keep every point for the checks
    return ['--model', checkpoint, '--device', 'cpu', '--process-res', '112',
            '--max-range', '1e9']


def read_bag(path: Path) -> dict[str, list]:
    """topic -> [(log time ns, msg, raw bytes, msgtype)] via rosbags."""
    from rosbags.highlevel import AnyReader

    out = defaultdict(list)
    with AnyReader([path]) as reader:
        for conn, t, raw in reader.messages():
            out[conn.topic].append((t, reader.deserialize(raw, conn.msgtype), bytes(raw),
                                    conn.msgtype))
    return out


def input_stamps(bag: Path, topic: str) -> list[int]:
    return [msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            for _, msg, _, _ in read_bag(bag)[topic]]


def depth_array(msg) -> np.ndarray:
    assert msg.encoding == '32FC1' and msg.is_bigendian == 0 and msg.step == 4 * msg.width
    return np.frombuffer(bytes(msg.data), '<f4').reshape(msg.height, msg.width)


def cloud_xyz(msg) -> np.ndarray:
    names = [f.name for f in msg.fields]
    assert names[:3] == ['x', 'y', 'z'] and msg.point_step == 4 * len(names)
    values = np.frombuffer(bytes(msg.data), '<f4').reshape(-1, len(names))
    return values[:, :3]


def back_projection(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Independent pinhole back-projection of every valid pixel, row-major order."""
    v, u = np.mgrid[:depth.shape[0], :depth.shape[1]]
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = (v - K[1, 2]) / K[1, 1] * depth
    xyz = np.stack([x, y, depth], axis=-1).reshape(-1, 3)
    keep = np.isfinite(xyz[:, 2]) & (xyz[:, 2] > 0)
    return xyz[keep]


@pytest.fixture(scope='module')
def dgp_run(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp('dgp')
    result = da3_ros('process', str(DGP), *model_args(checkpoint), '--output-bag',
                     str(out / 'bag'), '--storage', 'mcap', '--npy-dir', str(out / 'npy'),
                     '--ply-dir', str(out / 'ply'))
    return result, out


def test_dgp_bag_counts_stamps_frames(dgp_run):
    result, out = dgp_run
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ['bag', 'npy', 'ply']  # nothing partial
    assert sorted(p.name for p in (out / 'bag').iterdir()) == ['bag.mcap', 'metadata.yaml']
    bag = read_bag(out / 'bag')
    for cam in DGP_CAMS:
        stamps = input_stamps(DGP, f'/{cam}/image_raw/compressed')
        for name, msgtype in (('depth', 'sensor_msgs/msg/Image'),
                              ('confidence', 'sensor_msgs/msg/Image'),
                              ('camera_info', 'sensor_msgs/msg/CameraInfo'),
                              ('points', 'sensor_msgs/msg/PointCloud2')):
            records = bag[f'/{cam}/da3/{name}']
            assert [r[3] for r in records] == [msgtype] * 3
            assert [r[0] for r in records] == stamps  # log time = input stamp
            for _, msg, _, _ in records:
                assert msg.header.frame_id == cam
                assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec in stamps
        for _, msg, _, _ in bag[f'/{cam}/da3/depth'] + bag[f'/{cam}/da3/confidence']:
            assert msg.encoding == '32FC1' and max(msg.height, msg.width) == 112
    assert len(bag['/da3/points']) == len(bag['/da3/rig_depth']) == 3
    assert {m.header.frame_id for _, m, _, _ in bag['/da3/points']} == {'CAMERA_01'}
    for _, rig, _, _ in bag['/da3/rig_depth']:
        assert [c.camera_name for c in rig.cameras] == DGP_CAMS and rig.model == 'da3-small'
    assert len(bag['/tf']) == 3
    for _, tf, _, _ in bag['/tf']:
        assert [(t.header.frame_id, t.child_frame_id) for t in tf.transforms] == [
            ('CAMERA_01', f'{cam}_da3') for cam in DGP_CAMS]
    source_static = read_bag(DGP)['/tf_static']
    assert [r[2] for r in bag['/tf_static']] == [r[2] for r in source_static]  # byte-identical
    assert 'colorized_depth' not in ' '.join(bag)


def test_dgp_clouds_are_the_depth_back_projected(dgp_run):
    _, out = dgp_run
    bag = read_bag(out / 'bag')
    for cam in DGP_CAMS:
        infos, depths, clouds = (bag[f'/{cam}/da3/{n}'] for n in ('camera_info', 'depth',
                                                                 'points'))
        for (_, info, _, _), (_, depth, _, _), (_, cloud, _, _) in zip(infos, depths, clouds,
                                                                       strict=True):
            K = np.asarray(info.k).reshape(3, 3)
            assert (info.height, info.width) == (depth.height, depth.width)
            expected = back_projection(depth_array(depth), K)
            np.testing.assert_allclose(cloud_xyz(cloud), expected, rtol=1e-5, atol=1e-5)


def test_dgp_mcap_reads_with_mcap_ros2(dgp_run):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    _, out = dgp_run
    counts, rig_models = Counter(), set()
    with open(out / 'bag' / 'bag.mcap', 'rb') as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _, channel, _, msg in reader.iter_decoded_messages():
            counts[channel.topic] += 1
            if channel.topic == '/da3/rig_depth':
                rig_models.add(msg.model)
                assert len(msg.cameras) == 6
            if channel.topic == '/CAMERA_05/da3/depth':
                assert msg.encoding == '32FC1' and msg.header.frame_id == 'CAMERA_05'
    assert counts['/CAMERA_05/da3/points'] == counts['/da3/points'] == 3
    assert counts['/tf_static'] == 1 and counts['/tf'] == 3 and rig_models == {'da3-small'}


def test_dgp_npy_and_ply_files_match_the_bag(dgp_run):
    from da3_ros.offline.ply import read_ply

    _, out = dgp_run
    bag = read_bag(out / 'bag')
    rows = list(csv.DictReader(open(out / 'npy' / 'index.csv')))
    assert len(rows) == 18 and {r['units'] for r in rows} == {'model'}
    for cam in DGP_CAMS:
        cam_rows = [r for r in rows if r['camera'] == cam]
        for row, (_, depth, _, _), (_, info, _, _) in zip(
                cam_rows, bag[f'/{cam}/da3/depth'], bag[f'/{cam}/da3/camera_info'],
                strict=True):
            array = np.load(out / 'npy' / row['file'])
            assert array.dtype == np.float32
            np.testing.assert_array_equal(array, depth_array(depth))
            assert float(row['fx']) == pytest.approx(info.k[0]) and row['frame_id'] == cam
    plys = sorted((out / 'ply').iterdir())
    assert len(plys) == 3
    for ply, (_, fused, _, _) in zip(plys, bag['/da3/points'], strict=True):
        np.testing.assert_array_equal(read_ply(ply).xyz, cloud_xyz(fused))


def test_euroc_sqlite3_in_and_out(checkpoint, tmp_path):
    result = da3_ros('process', str(EUROC), *model_args(checkpoint), '--cameras',
                     '/cam0/image_raw', '/cam1/image_raw', '--output-bag', str(tmp_path / 'o'),
                     '--storage', 'sqlite3', '--outputs', 'depth,camera_info,cloud,tf')
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / 'o').iterdir()) == ['metadata.yaml', 'o.db3']
    bag = read_bag(tmp_path / 'o')
    assert sorted(bag) == ['/cam0/da3/camera_info', '/cam0/da3/depth', '/cam0/da3/points',
                           '/cam1/da3/camera_info', '/cam1/da3/depth', '/cam1/da3/points',
                           '/tf', '/tf_static']
    for cam in ('cam0', 'cam1'):
        assert [r[0] for r in bag[f'/{cam}/da3/depth']] == input_stamps(
            EUROC, f'/{cam}/image_raw')
        for (_, info, _, _), (_, depth, _, _), (_, cloud, _, _) in zip(
                bag[f'/{cam}/da3/camera_info'], bag[f'/{cam}/da3/depth'],
                bag[f'/{cam}/da3/points'], strict=True):
            np.testing.assert_allclose(
                cloud_xyz(cloud), back_projection(depth_array(depth),
                                                  np.asarray(info.k).reshape(3, 3)),
                rtol=1e-5, atol=1e-5)
    assert len(bag['/tf']) == 10


def test_sun3d_detects_colour_only_and_writes_a_global_ply(checkpoint, tmp_path):
    from da3_ros.offline.ply import read_ply

    result = da3_ros('process', str(SUN3D), *model_args(checkpoint), '--ply-dir',
                     str(tmp_path / 'ply'), '--world-frame', 'world', '--global-voxel', '0.5')
    assert result.returncode == 0, result.stderr
    assert 'processed 5 sets of 1 cameras' in result.stderr  # the 16UC1 depth is no camera
    assert [p.name for p in (tmp_path / 'ply').iterdir()] == ['global.ply']
    cloud = read_ply(tmp_path / 'ply' / 'global.ply')
    assert len(cloud.xyz) > 0 and np.isfinite(cloud.xyz).all() and cloud.rgb is not None
    voxels = np.floor(cloud.xyz / 0.5)
    assert len(np.unique(voxels, axis=0)) == len(voxels)  # one averaged point per voxel
