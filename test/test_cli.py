"""The `da3-ros` command line, run as a real subprocess (`python -m da3_ros.cli`).

Exit codes are part of the interface (da3_ros/cli.py EXIT_CODES): 0 ok, 1 unexpected,
2 usage, 3 bad input/config, 4 checkpoint/model file (incl. ONNX without da3_ros metadata),
5 TensorRT missing.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from da3_ros.engine.preprocess import plan_resize
from da3_ros.model import build
from da3_ros.model.checkpoint import save
from random_weights import randomize_

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

ROOT = Path(__file__).resolve().parents[1]


def da3_ros(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    # cwd = repository root, so that this checkout's da3_ros is the one imported
    return subprocess.run([sys.executable, '-m', 'da3_ros.cli', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def tensorrt_installed() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """(net, folder): random DA3-SMALL weights saved in the official checkpoint layout."""
    net = randomize_(build('da3-small').eval().requires_grad_(False), seed=3)
    return net, save(net, tmp_path_factory.mktemp('ckpt') / 'da3-small')


@pytest.fixture(scope='module')
def exported(checkpoint, tmp_path_factory):
    """(result, path) of `export-onnx --image-size 250x140 --process-res 126`."""
    path = tmp_path_factory.mktemp('onnx') / 'small.onnx'
    result = da3_ros('export-onnx', '--model', str(checkpoint[1]), '--image-size', '250x140',
                     '--process-res', '126', '--output', str(path))
    return result, path


def assert_one_error_line(result, code: int, text: str):
    assert result.returncode == code, result.stderr
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if 'ERROR' in line or 'error:' in line]
    assert len(errors) == 1 and text in errors[0], result.stderr


@pytest.mark.parametrize('command', [[], ['export-onnx'], ['build-engine']])
def test_help_on_every_level(command):
    result = da3_ros(*command, '--help', timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'exit codes:' in result.stdout and '5  TensorRT is not available' in result.stdout
    expected = {(): 'export-onnx', ('export-onnx',): '--image-size',
                ('build-engine',): '--max-views'}[tuple(command)]
    assert expected in result.stdout


def test_export_from_checkpoint_folder(checkpoint, exported):
    from da3_ros.engine.onnx_runtime import OnnxModel

    net, _ = checkpoint
    result, path = exported
    assert result.returncode == 0, result.stderr
    # 250x140 (WxH) at process_res 126: longest side 250 -> 126, 140 -> round(70.56) = 71,
    # then the nearest multiples of 14: 70 x 126 (HxW)
    assert plan_resize(140, 250, 126).network_hw == (70, 126)
    model = OnnxModel(path, expect_model='da3-small', expect_hw=(70, 126))
    assert not model.with_cameras
    x = torch.randn(1, 2, 3, 70, 126, generator=torch.Generator().manual_seed(0))
    got = model.run(x.numpy())
    with torch.no_grad():
        want = net(x, ref_view_strategy='first')
    for name in ('depth', 'depth_conf'):     # the weights in the file are the folder's
        ref = getattr(want, name).numpy()
        assert np.abs(got[name] - ref).max() <= 1e-3 * np.abs(ref).max(), name


def test_export_height_width_with_cameras(checkpoint, tmp_path):
    from da3_ros.engine.onnx_runtime import OnnxModel

    path = tmp_path / 'cams.onnx'
    result = da3_ros('export-onnx', '--model', str(checkpoint[1]), '--height', '28',
                     '--width', '42', '--with-cameras', '--output', str(path))
    assert result.returncode == 0, result.stderr
    model = OnnxModel(path, expect_model='da3-small', expect_hw=(28, 42))
    assert model.with_cameras


def test_export_missing_checkpoint_folder(tmp_path):
    result = da3_ros('export-onnx', '--model', str(tmp_path / 'nothing-here'), '--height',
                     '70', '--width', '126', '--output', str(tmp_path / 'x.onnx'))
    assert_one_error_line(result, 4, 'does not exist')
    assert not (tmp_path / 'x.onnx').exists()


def test_export_height_not_multiple_of_14(checkpoint, tmp_path):
    result = da3_ros('export-onnx', '--model', str(checkpoint[1]), '--height', '71',
                     '--width', '126', '--output', str(tmp_path / 'x.onnx'))
    assert_one_error_line(result, 3, 'multiple of 14')


def test_export_output_folder_missing(checkpoint, tmp_path):
    result = da3_ros('export-onnx', '--model', str(checkpoint[1]), '--height', '70',
                     '--width', '126', '--output', str(tmp_path / 'no' / 'x.onnx'))
    assert_one_error_line(result, 3, 'does not exist')


@pytest.mark.parametrize('args', [
    ['frobnicate'],
    ['export-onnx', '--model', 'm', '--height', '70', '--output', 'x.onnx'],
    ['export-onnx', '--model', 'm', '--image-size', '640x480', '--height', '70', '--width',
     '126', '--output', 'x.onnx'],
    ['export-onnx', '--model', 'm', '--image-size', '640by480', '--output', 'x.onnx'],
    ['build-engine', '--onnx', 'x.onnx', '--precision', 'int8'],
    ['build-engine'],
])
def test_usage_errors(args):
    result = da3_ros(*args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert 'usage:' in result.stderr and 'Traceback' not in result.stderr


def test_build_engine_without_tensorrt(exported, tmp_path):
    if tensorrt_installed():
        pytest.skip('tensorrt is installed; this checks the exit code without it')
    result = da3_ros('build-engine', '--onnx', str(exported[1]), '--cache-dir',
                     str(tmp_path / 'engines'))
    assert_one_error_line(result, 5, 'TensorRT is not available')
    assert result.stdout == ''


def test_build_engine_on_non_da3_onnx(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in 'xy']
    graph = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g', io[:1], io[1:])
    onnx.save(helper.make_model(graph), str(tmp_path / 'plain.onnx'))
    result = da3_ros('build-engine', '--onnx', str(tmp_path / 'plain.onnx'))
    assert_one_error_line(result, 4, 'lacks da3_ros metadata')


def test_build_engine_missing_file_and_bad_views(tmp_path):
    result = da3_ros('build-engine', '--onnx', str(tmp_path / 'none.onnx'))
    assert_one_error_line(result, 4, 'does not exist')
    result = da3_ros('build-engine', '--onnx', str(tmp_path / 'none.onnx'), '--min-views', '3',
                     '--opt-views', '2')
    assert_one_error_line(result, 3, 'min <= opt <= max')


def test_cli_defaults_are_the_node_defaults():
    """Options that mirror a node parameter take its default (and choices), never a copy."""
    from da3_ros.cli import make_parser
    from da3_ros.offline.command import slam_chunks
    from da3_ros.ros.depth.params import OUTPUTS, PARAMS
    from da3_ros.ros.params import by_name
    from da3_ros.ros.slam.params import SLAM_PARAMS

    args = make_parser().parse_args(['process', 'in', '--model', 'm', '--slam', 'out'])
    mirrored = {'slop': 'sync.slop_s', 'max_wait': 'sync.max_wait_s', 'backend': 'backend',
                'device': 'device', 'precision': 'precision', 'process_res': 'process_res',
                'process_res_method': 'process_res_method',
                'output_resolution': 'output_resolution', 'cloud_stride': 'cloud.stride',
                'min_confidence': 'cloud.min_confidence', 'max_range': 'cloud.max_range_m',
                'fused_voxel': 'fused.voxel_size_m'}
    for option, name in mirrored.items():
        assert getattr(args, option) == by_name(PARAMS, name).default, option
    assert slam_chunks(args) == (by_name(SLAM_PARAMS, 'chunk.size').default,
                                 by_name(SLAM_PARAMS, 'chunk.overlap').default)
    export = make_parser().parse_args(['export-onnx', '--model', 'm', '--output', 'o.onnx'])
    assert export.process_res == by_name(PARAMS, 'process_res').default
    assert export.method == by_name(PARAMS, 'process_res_method').default
    from da3_ros.offline.command import default_outputs
    assert default_outputs().split(',') == [o for o in OUTPUTS if o != 'colorized_depth']
