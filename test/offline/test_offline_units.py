"""Pieces of da3_ros/offline without the model: staging, PLY, the run loop's failure path."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from da3_ros.errors import ConfigError, InputError
from da3_ros.offline.ply import read_ply, write_ply
from da3_ros.offline.process import ProcessOptions, run_sets
from da3_ros.offline.staging import Staging
from da3_ros.ros.depth_outputs import OutputOptions
from da3_ros.ros.pointcloud import Points


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
    from da3_ros.nodes.depth_node import TOPIC_NAMES
    from da3_ros.offline.bag_output import TOPIC_NAMES as BAG_TOPICS

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
