"""The depth node as a real process, fed real multi-camera data by replayer.py (another
process), running DA3-SMALL with random weights on the CPU. Every output topic is decoded with
rosbags and checked: encodings, shapes, stamps, frames, CameraInfo at the published resolution,
each cloud = the back-projection of the published depth through the published CameraInfo,
the fused cloud = the per-camera clouds moved by RigDepth's poses, and the TF tree.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from node_harness import (
    ROOT,
    Recording,
    back_project,
    cloud_arrays,
    image_array,
    ros_env,
    run_helper,
    stamp_ns,
    start_node,
    stop,
    transform_matrix,
    write_params,
)

from shared_data import DATA

NUSCENES_CAMS = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_RIGHT', 'CAM_BACK', 'CAM_BACK_LEFT',
                 'CAM_FRONT_LEFT']
DGP_CAMS = ['CAMERA_01', 'CAMERA_05', 'CAMERA_06', 'CAMERA_07', 'CAMERA_08', 'CAMERA_09']
PER_CAMERA = {'depth': 'sensor_msgs/msg/Image', 'confidence': 'sensor_msgs/msg/Image',
              'camera_info': 'sensor_msgs/msg/CameraInfo',
              'points': 'sensor_msgs/msg/PointCloud2'}
RIG = {'/da3/points': 'sensor_msgs/msg/PointCloud2', '/da3/rig_depth': 'da3_ros/msg/RigDepth'}


def base_params(model_dir: str, cameras: list[str], **more) -> dict:
    return {'cameras': [f'/{c}' for c in cameras], 'model': model_dir, 'device': 'cpu',
            'process_res': 140, 'qos.reliable_inputs': True, 'qos.reliable_outputs': True,
            'diagnostics_period_s': 0.2, 'cloud.max_range_m': 1e6, **more}


def replay(tmp_path: Path, test_name: str, params: dict, source: str, outputs: dict,
           sets: int, *flags: str) -> Recording:
    env = ros_env(test_name)
    log = tmp_path / 'node.log'
    node = start_node(write_params(tmp_path / 'params.yaml', params), env, log)
    try:
        run_helper('replayer.py', ['--source', source, '--sets', str(sets), '--outputs',
                                   json.dumps(outputs), '--out', str(tmp_path / 'rec'), *flags],
                   env, node, log)
        assert node.poll() is None, log.read_text()
    finally:
        stop(node)
    return Recording(tmp_path / 'rec')


def outputs_for(cameras: list[str], extra_per_camera: dict | None = None,
                rig: dict | None = None) -> dict:
    per_camera = {**PER_CAMERA, **(extra_per_camera or {})}
    topics = {f'/{c}/da3/{name}': kind for c in cameras for name, kind in per_camera.items()}
    return {**topics, **(rig if rig is not None else RIG)}


def input_stamps(rec: Recording, camera: str) -> list[int]:
    """Stamps of the images published for `camera`, in order."""
    return [s for topic, s, _ in rec.inputs if topic.startswith(f'/{camera}/image_raw')]


def check_camera(rec: Recording, camera: str, frame: str, stride: int,
                 min_confidence: float = 0.0) -> list[tuple]:
    """Check one camera's depth / confidence / CameraInfo / cloud per set.
    Returns per set (depth (H, W), K (3, 3), cloud xyz (N, 3))."""
    prefix, results = f'/{camera}/da3', []
    stamps = input_stamps(rec, camera)
    n = len(stamps)
    for name in PER_CAMERA:
        assert len(rec.outputs[f'{prefix}/{name}']) == n, name
    for k in range(n):
        depth_msg = rec.outputs[f'{prefix}/depth'][k]
        conf_msg = rec.outputs[f'{prefix}/confidence'][k]
        info = rec.outputs[f'{prefix}/camera_info'][k]
        cloud = rec.outputs[f'{prefix}/points'][k]
        for msg in (depth_msg, conf_msg, info, cloud):
            assert (msg.header.frame_id, stamp_ns(msg.header)) == (frame, stamps[k])
        depth, conf = image_array(depth_msg), image_array(conf_msg)
        assert depth.shape == conf.shape == (info.height, info.width)
        K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        np.testing.assert_array_equal(np.asarray(info.p).reshape(3, 4)[:, :3], K)
        assert np.isfinite(K).all() and K[0, 0] > 0 and K[1, 1] > 0
        fields = cloud_arrays(cloud)
        assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb', 'confidence']
        xyz = np.stack([fields['x'], fields['y'], fields['z']], 1).astype(np.float64)
        expected = back_project(depth, K, stride)
        conf_s = conf[::stride, ::stride].reshape(-1)
        keep = np.isfinite(expected[:, 2]) & (expected[:, 2] > 0) & (conf_s >= min_confidence)
        assert keep.sum() == len(xyz) > 0
        np.testing.assert_allclose(xyz, expected[keep], rtol=2e-6, atol=1e-6)
        np.testing.assert_array_equal(fields['confidence'], conf_s[keep])
        results.append((depth, K, xyz, fields['rgb']))
    return results


def check_fused(rec: Recording, per_camera_xyz: list[list[np.ndarray]], fixed_frame: str,
                cameras: list[str]) -> list[np.ndarray]:
    """The fused cloud is the concatenation of the per-camera clouds moved by RigDepth's
    t_fixed_camera; RigDepth carries the published depth and CameraInfo. Returns per set the
    (S, 4, 4) T_fixed_camera."""
    poses = []
    for k, (fused, rig) in enumerate(zip(rec.outputs['/da3/points'],
                                         rec.outputs['/da3/rig_depth'], strict=True)):
        stamps = [input_stamps(rec, c)[k] for c in cameras]
        for msg in (fused, rig):
            assert (msg.header.frame_id, stamp_ns(msg.header)) == (fixed_frame, max(stamps))
        assert [c.camera_name for c in rig.cameras] == cameras
        assert rig.model == 'da3-small'
        T = np.stack([transform_matrix(c.t_fixed_camera) for c in rig.cameras])
        for c, stamp in zip(rig.cameras, stamps, strict=True):
            assert stamp_ns(c.depth.header) == stamp_ns(c.camera_info.header) == stamp
            assert c.depth.encoding == c.confidence.encoding == '32FC1'
        moved = [xyz @ T[i, :3, :3].T + T[i, :3, 3] for i, xyz in enumerate(per_camera_xyz[k])]
        f = cloud_arrays(fused)
        np.testing.assert_allclose(np.stack([f['x'], f['y'], f['z']], 1),
                                   np.concatenate(moved), rtol=1e-5, atol=1e-4)
        poses.append(T)
    return poses


def test_nuscenes_6cam_rig_calibration_yaml(tmp_path, request, da3_small_dir):
    """6 JPEG cameras, rig extrinsics from the calibration YAML feed the camera encoder:
    metric output in the rig's scale, RigDepth poses = the calibration, CameraInfo = the
    given K scaled to the network resolution."""
    params = base_params(
        da3_small_dir, NUSCENES_CAMS, image_transport=['compressed'],
        metric_mode='rig_calibration',
        pose_conditioning=True, **{'rig.source': 'yaml', 'rig.base_frame': 'base_link',
                                   'rig.calibration_file': str(
                                       ROOT / 'config' / 'nuscenes_6cam_calibration.yaml'),
                                   'cloud.stride': 2, 'sync.slop_s': 0.05})
    rec = replay(tmp_path, request.node.nodeid, params, 'nuscenes',
                 outputs_for(NUSCENES_CAMS), 1)
    calibration = json.loads((DATA / 'nuscenes_mini_6cam_sample' / 'calibration.json')
                             .read_text())['cameras']
    xyz = []
    for cam in NUSCENES_CAMS:
        [(depth, K, points, _)] = check_camera(rec, cam, cam, stride=2)
        xyz.append(points)
        assert depth.shape == (84, 140)  # 900 x 1600 at process_res 140
        K_in = np.asarray(calibration[cam]['cam2img'])
        np.testing.assert_allclose(np.diag(K)[:2], np.diag(K_in)[:2] * [140 / 1600, 84 / 900],
                                   rtol=1e-6)
    [T] = check_fused(rec, [xyz], 'base_link', NUSCENES_CAMS)
    [rig] = rec.outputs['/da3/rig_depth']
    assert rig.is_metric
    for i, cam in enumerate(NUSCENES_CAMS):
        np.testing.assert_allclose(T[i], calibration[cam]['cam2ego'], atol=1e-6)
    assert not any(k.startswith('drops.') for k in rec.diagnostics), rec.diagnostics
    assert rec.diagnostics['sets_processed'] == '1'


def dgp_tf() -> tuple[dict, list]:
    """The dgp bag's T_LIDAR_camera per camera and [(stamp_ns, T_world_LIDAR)]."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore
    static, dynamic = {}, []
    bag = DATA / 'rosbag2_samples' / 'dgp_multicam_6cam_mcap'
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        conns = [c for c in reader.connections if c.topic in ('/tf', '/tf_static')]
        for conn, _, raw in reader.messages(connections=conns):
            for t in reader.deserialize(raw, conn.msgtype).transforms:
                if conn.topic == '/tf_static':
                    static[t.child_frame_id] = transform_matrix(t.transform)
                else:
                    dynamic.append((stamp_ns(t.header), transform_matrix(t.transform)))
    return static, dynamic


def test_dgp_mcap_bag_rig_from_tf_static(tmp_path, request, da3_small_dir):
    """6 CompressedImage cameras + CameraInfo + /tf_static (LIDAR -> CAMERA_xx) + /tf
    (world -> LIDAR): extrinsics from /tf_static condition DA3; the fused cloud and RigDepth
    are in the fixed frame 'world', reached through the dynamic /tf."""
    params = base_params(
        da3_small_dir, DGP_CAMS, image_transport=['compressed'], metric_mode='rig_calibration',
        pose_conditioning=True, fixed_frame='world',
        **{'rig.source': 'tf', 'rig.base_frame': 'LIDAR', 'tf_tolerance_s': 0.05})
    rec = replay(tmp_path, request.node.nodeid, params, 'dgp', outputs_for(DGP_CAMS), 2,
                 '--publish-tf')
    xyz = [[] for _ in range(2)]
    for cam in DGP_CAMS:
        for k, (depth, _, points, _) in enumerate(check_camera(rec, cam, cam, stride=1)):
            assert depth.shape == (84, 140)  # 1216 x 1936
            xyz[k].append(points)
    poses = check_fused(rec, xyz, 'world', DGP_CAMS)
    static, dynamic = dgp_tf()
    for k, T in enumerate(poses):
        set_stamp = max(input_stamps(rec, c)[k] for c in DGP_CAMS)
        _, T_world_lidar = min(dynamic, key=lambda d: abs(d[0] - set_stamp))
        for i, cam in enumerate(DGP_CAMS):
            np.testing.assert_allclose(T[i], T_world_lidar @ static[cam], atol=1e-6)
    assert all(r.is_metric for r in rec.outputs['/da3/rig_depth'])
    assert not any(k.startswith('drops.') for k in rec.diagnostics), rec.diagnostics


def euroc_images() -> list[np.ndarray]:
    """The first two /cam0 and /cam1 mono8 images, (480, 752) uint8: [cam0_0, cam1_0, ...]."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore
    bag = DATA / 'rosbag2_samples' / 'euroc_v1_01_stereo_imu_sqlite3'
    images = {}
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        conns = [c for c in reader.connections if c.topic.endswith('image_raw')]
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            images.setdefault(conn.topic, []).append(
                np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width))
    return images


@pytest.mark.parametrize('stride', [3])
def test_euroc_sqlite_bag_relative_input_resolution(tmp_path, request, da3_small_dir, stride):
    """mono8 stereo Image: relative mode at the input resolution (752 x 480), colourised depth,
    DA3's estimated poses on /tf as cam0_da3 / cam1_da3 under cam0 (DA3's world)."""
    cams = ['cam0', 'cam1']
    params = base_params(da3_small_dir, cams, output_resolution='input',
                         **{'publish.colorized_depth': True, 'cloud.stride': stride,
                            'cloud.min_confidence': 2.17, 'sync.slop_s': 0.005})
    outputs = outputs_for(cams, {'depth_colorized': 'sensor_msgs/msg/Image'},
                          {**RIG, '/tf': 'tf2_msgs/msg/TFMessage'})
    rec = replay(tmp_path, request.node.nodeid, params, 'euroc', outputs, 2)
    images = euroc_images()
    xyz = [[] for _ in range(2)]
    for cam in cams:
        for k, (depth, _, points, rgb) in enumerate(
                check_camera(rec, cam, cam, stride, min_confidence=2.17)):
            assert depth.shape == (480, 752)
            xyz[k].append(points)
            colour = rec.outputs[f'/{cam}/da3/depth_colorized'][k]
            assert (colour.encoding, colour.height, colour.width) == ('rgb8', 480, 752)
            assert stamp_ns(colour.header) == input_stamps(rec, cam)[k]
            grey = images[f'/{cam}/image_raw'][k][::stride, ::stride].reshape(-1)
            conf = image_array(rec.outputs[f'/{cam}/da3/confidence'][k])[::stride, ::stride]
            keep = (conf.reshape(-1) >= 2.17) & np.isfinite(depth[::stride, ::stride].reshape(-1))
            np.testing.assert_array_equal(rgb, grey[keep].astype(np.uint32) * 0x010101)
    poses = check_fused(rec, xyz, 'cam0', cams)
    for k, T in enumerate(poses):
        tf = rec.outputs['/tf'][k].transforms
        assert [(t.header.frame_id, t.child_frame_id) for t in tf] == [
            ('cam0', 'cam0_da3'), ('cam0', 'cam1_da3')]
        for i, t in enumerate(tf):
            assert stamp_ns(t.header) == input_stamps(rec, cams[i])[k]
            np.testing.assert_allclose(transform_matrix(t.transform), T[i], atol=1e-5)
    assert not rec.outputs['/da3/rig_depth'][0].is_metric
    assert not any(k.startswith('drops.') for k in rec.diagnostics), rec.diagnostics
    for stage in ('convert', 'sync', 'network', 'messages', 'publish', 'total'):
        assert float(rec.diagnostics[f'latency_ms.{stage}.mean']) >= 0.0
    assert float(rec.diagnostics['cam0.rate_hz']) > 0.0
