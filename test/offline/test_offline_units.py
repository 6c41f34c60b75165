"""Pieces of da3_ros/offline without the model: staging, PLY, the run loop's failure path."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from da3_ros.errors import ConfigError, InputError
from da3_ros.geometry.points import Points
from da3_ros.offline.ply import read_ply, write_ply
from da3_ros.offline.process import ProcessOptions, run_sets
from da3_ros.offline.staging import Staging
from da3_ros.ros.depth.outputs import OutputOptions


def test_staging_commits_only_on_success(tmp_path):
    with Staging() as staging:
        bag, ply = staging.stage(tmp_path / 'bag'), staging.stage(tmp_path / 'a.ply')
        bag.mkdir()
        (bag / 'bag.mcap').write_bytes(b'x')
        ply.write_bytes(b'y')
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith('.')) == []
        staging.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.ply', 'bag']
    assert (tmp_path / 'bag' / 'bag.mcap').read_bytes() == b'x'
    with pytest.raises(RuntimeError), Staging(overwrite=True) as staging:
        staging.stage(tmp_path / 'a.ply').write_bytes(b'new')
        raise RuntimeError('failed half-way')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.ply', 'bag']
    assert (tmp_path / 'a.ply').read_bytes() == b'y'  # the old output survives a failed run


def test_staging_refuses_existing_and_missing_folders(tmp_path):
    (tmp_path / 'out').mkdir()
    with pytest.raises(ConfigError, match='exists'):
        Staging().stage(tmp_path / 'out')
    with pytest.raises(ConfigError, match='does not exist'):
        Staging().stage(tmp_path / 'no' / 'out')


def test_ply_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    points = Points(rng.normal(size=(50, 3)).astype(np.float32),
                    rng.integers(0, 255, (50, 3), dtype=np.uint8),
                    rng.random(50).astype(np.float32))
    write_ply(tmp_path / 'p.ply', points)
    back = read_ply(tmp_path / 'p.ply')
    for name in ('xyz', 'rgb', 'confidence'):
        np.testing.assert_array_equal(getattr(back, name), getattr(points, name))
    write_ply(tmp_path / 'q.ply', Points(points.xyz))
    assert read_ply(tmp_path / 'q.ply').rgb is None
    (tmp_path / 'bad.ply').write_bytes(b'not a ply')
    with pytest.raises(InputError):
        read_ply(tmp_path / 'bad.ply')


def test_bag_topics_are_the_depth_nodes():
    from da3_ros.offline.bag_output import TOPIC_NAMES as BAG_TOPICS
    from da3_ros.ros.depth.publishers import TOPIC_NAMES

    assert BAG_TOPICS == TOPIC_NAMES


class _Source:
    skipped = Counter()

    def frames(self):
        from types import SimpleNamespace

        yield SimpleNamespace(inputs=[SimpleNamespace(rgb=np.zeros((4, 4, 3), np.uint8))])


class _Consumer:
    def __init__(self):
        self.closed = []

    def consume(self, result):
        raise AssertionError('the failing predictor comes first')

    def close(self, success):
        self.closed.append(success)


class _FailingPredictor:
    def predict(self, images, K=None):
        raise InputError('bad set')


def test_run_sets_closes_consumers_as_failed():
    consumer = _Consumer()
    options = ProcessOptions(OutputOptions(frozenset()))
    with pytest.raises(InputError, match='bad set'):
        run_sets(_Source(), _FailingPredictor(), options, [consumer])
    assert consumer.closed == [False]


def test_run_sets_without_any_set_is_an_input_error():
    class Empty:
        skipped = Counter({'unmatched': 4})

        def frames(self):
            return iter(())

    consumer = _Consumer()
    with pytest.raises(InputError, match='unmatched'):
        run_sets(Empty(), None, ProcessOptions(OutputOptions(frozenset())), [consumer])
    assert consumer.closed == [False]


class _Recorder:
    """A consumer that keeps what it gets; close(True) raises when told to."""

    def __init__(self, fail_close: bool = False):
        self.results, self.closed, self.fail_close = [], [], fail_close

    def consume(self, result):
        self.results.append(result)

    def close(self, success):
        self.closed.append(success)
        if success and self.fail_close:
            raise InputError('close failed')


def test_run_sets_without_predictor_and_a_failing_close():
    """No predictor: raw sets only. A consumer failing in close(True) -> the later ones are
    closed as failed, the earlier ones stay closed once with success."""
    first, failing, last = _Recorder(), _Recorder(fail_close=True), _Recorder()
    options = ProcessOptions(OutputOptions(frozenset()))
    with pytest.raises(InputError, match='close failed'):
        run_sets(_Source(), None, options, [first, failing, last])
    (result,) = first.results
    assert result.index == 0 and result.prediction is None and result.outputs is None
    assert (first.closed, failing.closed, last.closed) == ([True], [True], [False])


def test_static_base_is_the_root_of_the_camera_in_tf_static():
    from rclpy.serialization import serialize_message

    from da3_ros.offline.rig_frame import RawMessage
    from da3_ros.offline.slam_stage import static_base
    from da3_ros.ros.tf_buffer import make_tf_message

    T_base_imu, T_imu_cam = np.eye(4), np.eye(4)
    T_base_imu[:3, 3] = [1.0, 0.0, 0.0]
    T_imu_cam[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    T_imu_cam[:3, 3] = [0.0, 0.2, 0.0]
    tf = make_tf_message([('base_link', 'imu', T_base_imu, 0), ('imu', 'cam0', T_imu_cam, 0)])
    raw = RawMessage('/tf_static', 'tf2_msgs/msg/TFMessage', '', 0, serialize_message(tf))
    base, T_cam_base = static_base((raw,), 'cam0')
    assert base == 'base_link'
    np.testing.assert_allclose(T_cam_base, np.linalg.inv(T_base_imu @ T_imu_cam), atol=1e-12)
    assert static_base((raw,), 'cam9')[0] == 'cam9'        # no static parent: itself
    np.testing.assert_array_equal(static_base((), 'cam0')[1], np.eye(4))


def test_installed_copy_finds_the_message_definitions(tmp_path):
    """`.venv/bin/da3-ros` outside the tree and without AMENT_PREFIX_PATH (no sourced
    workspace) still finds RigDepth.msg for output bags: share/da3_ros/msg of the prefix."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ('AMENT_PREFIX_PATH', 'PYTHONPATH')}
    code = 'from da3_ros.offline.bag_output import da3_msg_dir; print(da3_msg_dir())'
    found = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    assert (Path(found) / 'RigDepth.msg').is_file() and (Path(found) / 'CameraDepth.msg').is_file()


def test_slam_needs_a_model_with_camera_poses():
    from da3_ros.offline.command import check_slam_model

    for name in ('da3-small', 'da3-giant', 'da3nested-giant-large'):
        check_slam_model(name)
    for name in ('da3metric-large', 'da3mono-large'):
        with pytest.raises(ConfigError, match='camera poses'):
            check_slam_model(name)
