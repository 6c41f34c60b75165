"""TensorRT build + backend: everything testable without TensorRT, and GPU tests that skip here.

The pure parts (view profiles, precision names, ONNX metadata checks, the engine cache key and
its files, output-shape planning, the dtype table, progress relaying) run everywhere. Building
and running real engines needs the tensorrt package and a CUDA GPU; those tests skip with the
reason instead of faking an engine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import numpy as np
import pytest
import torch

import da3_ros
from da3_ros.engine import engine_cache as ec
from da3_ros.engine import tensorrt_build as tb
from da3_ros.engine.onnx_export import export_onnx
from da3_ros.engine.tensorrt_backend import (
    TensorRTBackend,
    check_views,
    output_shapes,
    torch_dtype,
)
from da3_ros.errors import CheckpointError, ConfigError
from da3_ros.model import build
from random_weights import randomize_

onnx = pytest.importorskip('onnx')

H, W = 70, 126
ANYVIEW = ('depth', 'depth_conf', 'extrinsics', 'intrinsics')
NO_TRT = 'TensorRT is not installable on this machine (no wheel for it here, no NVIDIA GPU)'


def tensorrt_installed() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope='module')
def small_onnx(tmp_path_factory):
    """A real export of DA3-SMALL at H x W (random weights): (net, path)."""
    net = randomize_(build('da3-small').eval().requires_grad_(False), seed=1)
    return net, export_onnx(net, tmp_path_factory.mktemp('trt') / 'small.onnx', H, W)


def tiny_onnx(path, meta: dict | None, inputs=('images',), outputs=ANYVIEW, external=False):
    """An Identity-only graph with the given I/O names and metadata (not a DA3 network)."""
    from onnx import TensorProto, helper

    vin = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 'S', 4]) for n in inputs]
    vout = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 'S', 4]) for n in outputs]
    weight = helper.make_tensor('w', TensorProto.FLOAT, [4],   # raw: can go to external data
                                np.arange(4, dtype=np.float32).tobytes(), raw=True)
    nodes = [helper.make_node('Mul', [inputs[0], 'w'], [o]) for o in outputs]
    model = helper.make_model(helper.make_graph(nodes, 'g', vin, vout, [weight]))
    for key, value in (meta or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path), save_as_external_data=external, size_threshold=0,
              location=path.name + '.data')
    return path


def da3_meta(**changes) -> dict:
    meta = {'model': 'da3-small', 'height': str(H), 'width': str(W), 'opset': '18',
            'inputs': 'images', 'outputs': ','.join(ANYVIEW)}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def a_key(**changes) -> ec.EngineKey:
    key = ec.EngineKey('ab' * 32, '10.7.0', 'NVIDIA H100 80GB HBM3', 'fp16', 1, 2, 8,
                       '0.1.0', 'da3-small', H, W, ('images',), ANYVIEW)
    return dataclasses.replace(key, **changes)


# --- view profile and precision -------------------------------------------------------------

def test_view_profile_shapes_cover_images_and_pose_enc():
    profile = ec.ViewProfile(1, 2, 6)
    assert profile.shapes('images', H, W) == ((1, 1, 3, H, W), (1, 2, 3, H, W), (1, 6, 3, H, W))
    assert profile.shapes('pose_enc', H, W) == ((1, 1, 9), (1, 2, 9), (1, 6, 9))
    with pytest.raises(ConfigError, match='depth'):
        profile.shapes('depth', H, W)


@pytest.mark.parametrize('views', [(0, 1, 1), (2, 1, 3), (1, 3, 2), (1, 1, 0), (1.0, 2, 3),
                                   (True, 2, 3), (1, '2', 3)])
def test_view_profile_rejects_bad_orders_and_types(views):
    with pytest.raises(ConfigError, match='views|ints'):
        ec.ViewProfile(*views)


def test_view_profile_accepts_equal_bounds():
    assert ec.ViewProfile(3, 3, 3).shapes('pose_enc', H, W) == ((1, 3, 9),) * 3


@pytest.mark.parametrize('name', ['fp16', 'fp32'])
def test_precision_names(name):
    assert ec.check_precision(name) == name


@pytest.mark.parametrize('name', ['int8', 'FP16', 'bf16', '', None])
def test_precision_rejects_others(name):
    with pytest.raises(ConfigError, match='precision'):
        ec.check_precision(name)


# --- ONNX metadata ---------------------------------------------------------------------------

def test_reads_metadata_of_a_real_export(small_onnx):
    _, path = small_onnx
    info = ec.read_onnx_info(path)
    assert (info.model, info.height, info.width) == ('da3-small', H, W)
    assert info.inputs == ('images',) and info.outputs == ANYVIEW
    assert info.files == (path,)     # DA3-SMALL is far below the external-data threshold


def test_refuses_onnx_without_da3_metadata(tmp_path):
    with pytest.raises(CheckpointError, match='lacks da3_ros metadata'):
        ec.read_onnx_info(tiny_onnx(tmp_path / 'plain.onnx', None))


@pytest.mark.parametrize('meta, inputs, outputs, match', [
    (da3_meta(width=None), ('images',), ANYVIEW, 'lacks'),
    (da3_meta(inputs='images,pose_enc'), ('images',), ANYVIEW, 'not a da3_ros export'),
    (da3_meta(inputs='rgb'), ('rgb',), ANYVIEW, 'not a da3_ros export'),
    (da3_meta(outputs='depth'), ('images',), ('depth',), 'not a da3_ros export'),
    (da3_meta(model='da3-tiny'), ('images',), ANYVIEW, 'unknown model'),
    (da3_meta(height='71'), ('images',), ANYVIEW, 'multiple of 14'),
    (da3_meta(height='x'), ('images',), ANYVIEW, 'height/width'),
])
def test_refuses_inconsistent_metadata(tmp_path, meta, inputs, outputs, match):
    path = tiny_onnx(tmp_path / 'bad.onnx', meta, inputs, outputs)
    with pytest.raises(CheckpointError, match=match):
        ec.read_onnx_info(path)


def test_accepts_consistent_metadata_and_lists_external_data(tmp_path):
    path = tiny_onnx(tmp_path / 'ext.onnx', da3_meta(inputs='images,pose_enc'),
                     ('images', 'pose_enc'), external=True)
    info = ec.read_onnx_info(path)
    assert info.inputs == ('images', 'pose_enc')
    assert info.files == (path, tmp_path / 'ext.onnx.data')
    (tmp_path / 'ext.onnx.data').unlink()
    with pytest.raises(CheckpointError, match='external data'):
        ec.read_onnx_info(path)


@pytest.mark.parametrize('content', [None, b'this is not protobuf \xff\xfe' * 10])
def test_refuses_missing_or_unreadable_files(tmp_path, content):
    path = tmp_path / 'x.onnx'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match='does not exist|not a readable ONNX'):
        ec.read_onnx_info(path)


# --- cache key -------------------------------------------------------------------------------

def test_onnx_hash_covers_the_model_and_its_external_data(tmp_path):
    path = tiny_onnx(tmp_path / 'ext.onnx', da3_meta(), external=True)
    data = tmp_path / 'ext.onnx.data'
    info = ec.read_onnx_info(path)
    expected = hashlib.sha256(path.read_bytes() + data.read_bytes()).hexdigest()
    assert ec.files_sha256(info.files) == expected
    data.write_bytes(data.read_bytes()[::-1])      # other weights, same graph file
    assert ec.files_sha256(info.files) != expected


def test_make_key_records_every_input(small_onnx):
    _, path = small_onnx
    info = ec.read_onnx_info(path)
    key = ec.make_key(info, 'fp32', ec.ViewProfile(1, 3, 5), '10.7.0', 'NVIDIA H200')
    assert key.onnx_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (key.tensorrt_version, key.gpu_name, key.precision) == ('10.7.0', 'NVIDIA H200', 'fp32')
    assert key.profile == ec.ViewProfile(1, 3, 5)
    assert key.da3_ros_version == da3_ros.__version__
    assert (key.model, key.height, key.width, key.outputs) == ('da3-small', H, W, ANYVIEW)
    with pytest.raises(ConfigError):
        ec.make_key(info, 'int8', ec.ViewProfile(), '10.7.0', 'NVIDIA H200')


CHANGES = {'onnx_sha256': 'cd' * 32, 'tensorrt_version': '10.8.0', 'gpu_name': 'NVIDIA H200',
           'precision': 'fp32', 'min_views': 2, 'opt_views': 4, 'max_views': 16,
           'da3_ros_version': '0.2.0'}


@pytest.mark.parametrize('field', sorted(CHANGES))
def test_key_digest_and_file_name_change_with_each_field(field):
    base, changed = a_key(), a_key(**{field: CHANGES[field]})
    assert changed.digest != base.digest
    assert changed.file_stem != base.file_stem


def test_key_digest_is_deterministic():
    assert a_key().digest == a_key().digest
    assert re.fullmatch(r'[0-9a-f]{64}', a_key().digest)
    assert hash(a_key()) == hash(a_key())


def test_file_names(tmp_path):
    key = a_key()
    engine, sidecar = ec.engine_files(tmp_path, key)
    assert engine == tmp_path / f'da3-small_70x126_fp16_{key.digest[:16]}.engine'
    assert sidecar == engine.with_suffix('.json')
    assert re.fullmatch(r'da3-small_70x126_fp16_[0-9a-f]{16}', key.file_stem)


def test_timing_cache_file_is_per_version_and_gpu(tmp_path):
    a = ec.timing_cache_file(tmp_path, '10.7.0', 'NVIDIA H100 80GB HBM3')
    assert a == tmp_path / 'timing_trt10.7.0_NVIDIA-H100-80GB-HBM3.cache'
    assert ec.timing_cache_file(tmp_path, '10.8.0', 'NVIDIA H100 80GB HBM3') != a
    assert ec.timing_cache_file(tmp_path, '10.7.0', 'NVIDIA H200') != a


# --- cache files (the stored bytes are an opaque payload: nothing here deserializes them) ----

PAYLOAD = b'opaque payload standing in for serialized engine bytes; never deserialized'


def test_sidecar_round_trip(tmp_path):
    key = a_key(inputs=('images', 'pose_enc'))
    engine_path = ec.store(tmp_path, key, PAYLOAD, {'workspace_gib': 4.0})
    _, sidecar = ec.engine_files(tmp_path, key)
    assert engine_path.read_bytes() == PAYLOAD
    assert ec.read_sidecar(sidecar) == (key, len(PAYLOAD))
    data = json.loads(sidecar.read_text())
    assert data['build'] == {'workspace_gib': 4.0}
    assert data['key']['inputs'] == ['images', 'pose_enc']
    assert data['key']['gpu_name'] == 'NVIDIA H100 80GB HBM3'
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([engine_path.name, sidecar.name])


def test_lookup_hit_and_miss(tmp_path):
    key = a_key()
    assert ec.lookup(tmp_path, key) == 'missing'
    ec.store(tmp_path, key, PAYLOAD, {})
    assert ec.lookup(tmp_path, key) is None
    for field, value in CHANGES.items():      # any change of a key field: not this engine
        assert ec.lookup(tmp_path, a_key(**{field: value})) == 'missing', field


@pytest.mark.parametrize('damage, reason', [
    (lambda eng, side: side.unlink(), 'no sidecar'),
    (lambda eng, side: side.write_text('{"key": '), 'unreadable sidecar'),
    (lambda eng, side: side.write_text(side.read_text().replace('10.7.0', '10.9.9')),
     'sidecar for another key'),
    (lambda eng, side: eng.write_bytes(PAYLOAD[:10]), 'engine size differs from sidecar'),
])
def test_lookup_marks_damaged_entries_stale(tmp_path, damage, reason):
    key = a_key()
    ec.store(tmp_path, key, PAYLOAD, {})
    damage(*ec.engine_files(tmp_path, key))
    assert ec.lookup(tmp_path, key) == reason


def test_write_atomic_replaces_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / 'f.bin'
    ec.write_atomic(target, b'one')
    ec.write_atomic(target, memoryview(b'two'))
    assert target.read_bytes() == b'two'
    assert [p.name for p in tmp_path.iterdir()] == ['f.bin']


def test_key_from_bad_json_is_a_checkpoint_error():
    data = a_key().to_json()
    with pytest.raises(CheckpointError, match='fields'):
        ec.EngineKey.from_json({k: v for k, v in data.items() if k != 'gpu_name'})
    with pytest.raises(CheckpointError, match='bad engine sidecar'):
        ec.EngineKey.from_json({**data, 'max_views': 0})
    with pytest.raises(CheckpointError, match='fields'):
        ec.EngineKey.from_json(['not', 'a', 'dict'])


# --- progress, logging -----------------------------------------------------------------------

def test_progress_relay_forwards_in_order():
    events = []
    relay = tb.ProgressRelay(events.append)
    relay.phase_start('Building engine', None, 3)
    relay.phase_start('Tactics', 'Building engine', 2)
    assert relay.step_complete('Tactics', 0) is True
    relay.phase_finish('Tactics')
    assert relay.step_complete('Building engine', 2) is True
    relay.phase_finish('Building engine')
    assert events == [tb.BuildEvent('start', 'Building engine', None, 0, 3),
                      tb.BuildEvent('start', 'Tactics', 'Building engine', 0, 2),
                      tb.BuildEvent('step', 'Tactics', step=1),
                      tb.BuildEvent('finish', 'Tactics'),
                      tb.BuildEvent('step', 'Building engine', step=3),
                      tb.BuildEvent('finish', 'Building engine')]


def test_progress_relay_cancels_on_ctrl_c():
    def interrupt(event):
        raise KeyboardInterrupt

    relay = tb.ProgressRelay(interrupt)
    relay.phase_start('Building engine', None, 3)      # must not raise into TensorRT
    assert relay.cancelled
    assert relay.step_complete('Building engine', 0) is False


def test_tensorrt_severity_names_map_to_logging_levels():
    # the five members of trt.ILogger.Severity in the TensorRT 10 Python docs
    assert set(tb.LOG_LEVELS) == {'INTERNAL_ERROR', 'ERROR', 'WARNING', 'INFO', 'VERBOSE'}
    assert tb.LOG_LEVELS['VERBOSE'] == 10 and tb.LOG_LEVELS['WARNING'] == 30


# --- backend planning ------------------------------------------------------------------------

def test_output_shapes_for_anyview_and_mono():
    assert output_shapes(ANYVIEW, 3, (H, W)) == {
        'depth': (1, 3, 70, 126), 'depth_conf': (1, 3, 70, 126),
        'extrinsics': (1, 3, 3, 4), 'intrinsics': (1, 3, 3, 3)}
    assert output_shapes(('depth', 'sky'), 1, (28, 42)) == {
        'depth': (1, 1, 28, 42), 'sky': (1, 1, 28, 42)}
    with pytest.raises(CheckpointError, match='ray'):
        output_shapes(('depth', 'ray'), 1, (H, W))


# element sizes of TensorRT DataTypes (TensorRT 10 Python docs, DataType.itemsize)
TRT_ITEMSIZE = {'FLOAT': 4, 'HALF': 2, 'BF16': 2, 'INT8': 1, 'UINT8': 1, 'INT32': 4,
                'INT64': 8, 'BOOL': 1}


@pytest.mark.parametrize('name', sorted(TRT_ITEMSIZE))
def test_dtype_table_matches_tensorrt_sizes(name):
    dtype = torch_dtype(name)
    assert torch.empty((), dtype=dtype).element_size() == TRT_ITEMSIZE[name]
    assert dtype.is_floating_point == (name in ('FLOAT', 'HALF', 'BF16'))


def test_dtype_table_named_cases():
    assert torch_dtype('FLOAT') is torch.float32 and torch_dtype('HALF') is torch.float16
    assert torch_dtype('BF16') is torch.bfloat16 and torch_dtype('BOOL') is torch.bool


@pytest.mark.parametrize('name', ['FP8', 'INT4', 'FP4', 'float32'])
def test_dtype_table_refuses_types_without_torch_buffers(name):
    with pytest.raises(CheckpointError, match=name):
        torch_dtype(name)


def test_check_views():
    profile = ec.ViewProfile(2, 2, 4)
    for views in (2, 3, 4):
        check_views(views, profile)
    for views in (1, 5):
        with pytest.raises(ConfigError, match='2..4 views'):
            check_views(views, profile)


def test_backend_checks_sidecar_before_touching_tensorrt(tmp_path):
    key = a_key()
    engine, sidecar = ec.engine_files(tmp_path, key)
    with pytest.raises(CheckpointError, match='missing'):
        TensorRTBackend(engine)
    sidecar.write_text(json.dumps({'key': key.to_json(), 'engine_bytes': 1000}))
    with pytest.raises(CheckpointError, match="'da3-large'"):
        TensorRTBackend(engine, expect_model='da3-large')
    with pytest.raises(CheckpointError, match='140x252'):
        TensorRTBackend(engine, expect_hw=(140, 252))
    with pytest.raises(CheckpointError, match='size differs'):     # no engine file at all
        TensorRTBackend(engine, expect_model='da3-small', expect_hw=(H, W))


# --- without / with TensorRT -----------------------------------------------------------------

def test_cached_or_build_without_tensorrt(small_onnx, tmp_path):
    if tensorrt_installed():
        pytest.skip('tensorrt is installed; this checks the error raised without it')
    with pytest.raises(tb.TensorRTUnavailable, match='TensorRT is not available') as caught:
        tb.cached_or_build(small_onnx[1], tmp_path)
    assert isinstance(caught.value, ConfigError)
    assert list(tmp_path.iterdir()) == []
    # the ONNX file is checked before TensorRT is looked for
    with pytest.raises(CheckpointError):
        tb.cached_or_build(tiny_onnx(tmp_path / 'plain.onnx', None), tmp_path)


def needs_tensorrt_gpu():
    pytest.importorskip('tensorrt', reason=NO_TRT)
    if not torch.cuda.is_available():
        pytest.skip('building/running TensorRT engines needs a CUDA GPU')


def test_cache_builds_once_and_rebuilds_on_change(small_onnx, tmp_path):
    needs_tensorrt_gpu()
    profile = ec.ViewProfile(1, 2, 3)
    first = tb.cached_or_build(small_onnx[1], tmp_path, 'fp32', profile)
    again = tb.cached_or_build(small_onnx[1], tmp_path, 'fp32', profile)
    assert first.built and not again.built and again.engine_path == first.engine_path
    other = tb.cached_or_build(small_onnx[1], tmp_path, 'fp32', ec.ViewProfile(1, 2, 4))
    assert other.built and other.engine_path != first.engine_path
    forced = tb.cached_or_build(small_onnx[1], tmp_path, 'fp32', profile, force=True)
    assert forced.built and forced.engine_path == first.engine_path
    assert len(list(tmp_path.glob('timing_trt*.cache'))) == 1


@pytest.mark.parametrize('precision, tol', [('fp32', 1e-3), ('fp16', 5e-2)])
def test_engine_matches_eager_torch(small_onnx, tmp_path, precision, tol):
    needs_tensorrt_gpu()
    net, path = small_onnx
    entry = tb.cached_or_build(path, tmp_path, precision, ec.ViewProfile(1, 2, 3))
    backend = TensorRTBackend(entry.engine_path, expect_model='da3-small', expect_hw=(H, W))
    x = torch.randn(1, 2, 3, H, W, generator=torch.Generator().manual_seed(0))
    got = backend.infer(x.cuda())
    with torch.no_grad():
        want = net(x, ref_view_strategy='first')
    for name in ('depth', 'depth_conf', 'extrinsics'):
        a, b = getattr(got, name), getattr(want, name)
        assert a.is_cuda and a.shape == b.shape
        err = float((a.cpu().double() - b.double()).abs().max() / b.double().abs().max())
        assert np.isfinite(err) and err <= tol, (name, err)
    with pytest.raises(ConfigError, match='1..3 views'):
        backend.infer(torch.zeros(1, 4, 3, H, W, device='cuda'))
