"""The one PLY codec (da3_ros/geometry/ply.py) and its two users, checked with readers that are
not the codec: plyfile reading what we write, and a header and body parsed by hand."""
from __future__ import annotations

import numpy as np
import pytest
from plyfile import PlyData

from da3_ros.errors import InputError
from da3_ros.geometry import ply
from da3_ros.geometry.points import Points
from da3_ros.offline.ply import read_ply, write_ply
from da3_ros.slam import map_io


def hand_parsed(path) -> tuple[list[str], np.ndarray]:
    """Header lines and the vertex rows of a binary little-endian PLY, by hand."""
    data = path.read_bytes()
    end = data.index(b'end_header\n') + len(b'end_header\n')
    lines = data[:end].decode('ascii').splitlines()
    types = {'float': '<f4', 'uchar': 'u1'}
    dtype = np.dtype([(line.split()[2], types[line.split()[1]]) for line in lines
                      if line.startswith('property')])
    count = int(next(line.split()[2] for line in lines if line.startswith('element vertex')))
    assert len(data) - end == count * dtype.itemsize
    return lines, np.frombuffer(data, dtype, count, end)


def random_points(n: int = 40) -> Points:
    rng = np.random.default_rng(3)
    return Points(rng.normal(size=(n, 3)).astype(np.float32),
                  rng.integers(0, 255, (n, 3), dtype=np.uint8), rng.random(n).astype(np.float32))


def test_offline_cloud_file_is_standard_ply(tmp_path):
    points = random_points()
    write_ply(tmp_path / 'c.ply', points)
    lines, rows = hand_parsed(tmp_path / 'c.ply')
    assert lines[:3] == ['ply', 'format binary_little_endian 1.0', 'element vertex 40']
    assert [line for line in lines if line.startswith('property')] == [
        'property float x', 'property float y', 'property float z', 'property uchar red',
        'property uchar green', 'property uchar blue', 'property float confidence']
    assert lines[-1] == 'end_header'
    np.testing.assert_array_equal(np.stack([rows[n] for n in 'xyz'], 1), points.xyz)
    vertex = PlyData.read(str(tmp_path / 'c.ply'))['vertex']
    np.testing.assert_array_equal(np.stack([vertex[c] for c in ('red', 'green', 'blue')], 1),
                                  points.rgb)
    np.testing.assert_array_equal(vertex['confidence'], points.confidence)


def test_map_ply_is_x_y_z_weight(tmp_path):
    rng = np.random.default_rng(4)
    xyz, weight = rng.normal(size=(25, 3)).astype(np.float32), rng.random(25).astype(np.float32)
    map_io.save_result(tmp_path, xyz, weight, np.arange(2.0), np.stack([np.eye(4)] * 2), {})
    lines, rows = hand_parsed(tmp_path / 'map.ply')
    assert rows.dtype.names == ('x', 'y', 'z', 'weight')
    np.testing.assert_array_equal(rows['weight'], weight)
    vertex = PlyData.read(str(tmp_path / 'map.ply'))['vertex']
    np.testing.assert_array_equal(np.stack([vertex[n] for n in 'xyz'], 1), xyz)
    back = map_io.load_result(tmp_path)
    np.testing.assert_array_equal(back.points, xyz)
    np.testing.assert_array_equal(back.weight, weight)


def test_reads_what_another_writer_wrote(tmp_path):
    """An ASCII PLY (not what we write) still reads: the reader is plyfile's."""
    (tmp_path / 'a.ply').write_text('ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n'
                                    'property float y\nproperty float z\nend_header\n'
                                    '1 2 3\n4 5 6\n')
    back = read_ply(tmp_path / 'a.ply')
    np.testing.assert_array_equal(back.xyz, [[1, 2, 3], [4, 5, 6]])
    assert back.rgb is None and back.confidence is None


def test_bad_files_are_input_errors(tmp_path):
    (tmp_path / 'bad.ply').write_bytes(b'not a ply')
    with pytest.raises(InputError):
        ply.read_ply(tmp_path / 'bad.ply')
    write_ply(tmp_path / 'c.ply', Points(np.zeros((1, 3), np.float32)))
    with pytest.raises(InputError, match='weight'):
        map_io.read_ply(tmp_path / 'c.ply')          # a cloud without weights is not a map
