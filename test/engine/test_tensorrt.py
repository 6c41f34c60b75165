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
from da3_ros.errors import CheckpointError, ConfigError, InputError
from da3_ros.files import write_atomic
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


def test_timing_cache_file_is_per_version_gpu_and_precision(tmp_path):
    a = ec.timing_cache_file(tmp_path, '10.7.0', 'NVIDIA H100 80GB HBM3', 'fp16')
    assert a == tmp_path / 'timing_trt10.7.0_NVIDIA-H100-80GB-HBM3_fp16.cache'
    assert ec.timing_cache_file(tmp_path, '10.8.0', 'NVIDIA H100 80GB HBM3', 'fp16') != a
    assert ec.timing_cache_file(tmp_path, '10.7.0', 'NVIDIA H200', 'fp16') != a
    assert ec.timing_cache_file(tmp_path, '10.7.0', 'NVIDIA H100 80GB HBM3', 'fp32') != a
    with pytest.raises(ConfigError):
        ec.timing_cache_file(tmp_path, '10.7.0', 'NVIDIA H100 80GB HBM3', 'int8')


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
    write_atomic(target, b'one')
    write_atomic(target, memoryview(b'two'))
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
    assert len(list(tmp_path.glob('timing_trt*_fp32.cache'))) == 1


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


# --- TensorRT 10 API paths, through the fake_tensorrt stand-in (TensorRT 10 names) -----------

@pytest.fixture
def fake_trt(monkeypatch):
    """Install a fake TensorRT 10.3 module; returns a function that replaces it (version)."""
    import sys

    import fake_tensorrt

    def install(version='10.3.0', **kwargs):
        module = fake_tensorrt.make_module(version, **kwargs)
        monkeypatch.setitem(sys.modules, 'tensorrt', module)
        tb.trt_logger.cache_clear()
        monkeypatch.setattr(tb, '_plugins_registered', False)
        return module

    yield install
    tb.trt_logger.cache_clear()


@pytest.mark.parametrize('version, match', [
    ('8.6.2', 'implicit-batch.*opset 17'), ('11.0.1', 'removed the weakly-typed '
                                            'BuilderFlag.FP16'), ('x.y', 'cannot read')])
def test_version_gate_refuses_other_majors(fake_trt, version, match):
    fake_trt(version)
    with pytest.raises(tb.TensorRTUnavailable, match=match) as caught:
        tb.import_tensorrt()
    text = str(caught.value)
    assert version in text and "tensorrt-cu12>=10,<11" in text and 'JetPack' in text


def test_version_gate_accepts_10(fake_trt):
    trt = fake_trt('10.3.0')
    assert tb.import_tensorrt() is trt


def test_install_hint_without_tensorrt(small_onnx, tmp_path):
    if tensorrt_installed():
        pytest.skip('tensorrt is installed')
    with pytest.raises(tb.TensorRTUnavailable, match=r"tensorrt-cu12>=10,<11.*JetPack 6\.1"):
        tb.import_tensorrt()


def test_build_registers_plugins_once_and_keeps_precisions_apart(fake_trt, small_onnx,
                                                                tmp_path):
    import os
    import stat

    trt = fake_trt()
    old_mask = os.umask(0o022)
    try:
        profile = ec.ViewProfile(1, 2, 3)
        fp16 = tb.cached_or_build(small_onnx[1], tmp_path, 'fp16', profile, gpu_name='GPU X')
        fp32 = tb.cached_or_build(small_onnx[1], tmp_path, 'fp32', profile, gpu_name='GPU X')
    finally:
        os.umask(old_mask)
    assert fp16.built and fp32.built and fp16.engine_path != fp32.engine_path
    assert fp16.engine_path.read_bytes() == b'fake serialized engine'
    assert [c for c in trt.calls if c[0] == 'init_libnvinfer_plugins'] == [
        ('init_libnvinfer_plugins', '')]
    built = [c[1] for c in trt.calls if c[0] == 'build_serialized_network']
    assert 'FP16' in built[0] and 'TF32' not in built[1] and 'FP16' not in built[1]
    assert 'PREFER_PRECISION_CONSTRAINTS' in built[0]
    pinned = {layer.name for layer in trt.last_network.layers if layer.precision is not None}
    assert pinned == set()               # the fp32 build (last) pins nothing
    assert ('set_shape', 'images', (1, 1, 3, H, W), (1, 2, 3, H, W), (1, 3, 3, H, W)) \
        in trt.calls
    caches = sorted(p.name for p in tmp_path.glob('timing_*.cache'))
    assert caches == ['timing_trt10.3.0_GPU-X_fp16.cache', 'timing_trt10.3.0_GPU-X_fp32.cache']
    # each build started from its own precision's (empty) cache
    assert [c[1] for c in trt.calls if c[0] == 'set_timing_cache'] == [b'', b'']
    for path in tmp_path.iterdir():       # readable by a node running as another user
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_fp16_keeps_layernorm_softmax_and_exp_in_fp32(fake_trt):
    trt = fake_trt()
    network = trt.Builder(None).create_network(0)
    pinned = tb.keep_fp32_layers(trt, network)
    assert pinned == ['attn/Softmax', 'norm', 'head/Exp']
    for layer in network.layers:
        want = trt.float32 if layer.name in pinned else None
        assert layer.precision == want, layer.name
        assert layer.output_types == ({0: trt.float32} if want else {})


def test_parse_failure_names_the_parser_error(fake_trt, small_onnx, tmp_path):
    trt = fake_trt()
    trt.script['parse'] = False
    with pytest.raises(CheckpointError, match='plugin not found'):
        tb.cached_or_build(small_onnx[1], tmp_path, 'fp32', gpu_name='GPU X')


def test_graph_with_plugin_ops_is_refused_before_tensorrt(fake_trt, tmp_path):
    from onnx import TensorProto, helper

    trt = fake_trt()
    vin = [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 'S', 4])]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 'S', 4]) for n in ANYVIEW]
    index = helper.make_tensor('i', TensorProto.INT64, [1, 1, 4], [0, 1, 2, 3])
    nodes = [helper.make_node('ScatterElements', ['images', 'i', 'images'], ['depth'],
                              axis=2, reduction='add')]
    nodes += [helper.make_node('Identity', ['images'], [n]) for n in ANYVIEW[1:]]
    model = helper.make_model(helper.make_graph(nodes, 'g', vin, outs, [index]),
                              opset_imports=[helper.make_opsetid('', 18)])
    for key, value in da3_meta().items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp_path / 'old.onnx'))
    with pytest.raises(CheckpointError, match="reduction='add'"):
        tb.cached_or_build(tmp_path / 'old.onnx', tmp_path, 'fp32', gpu_name='GPU X')
    assert trt.calls == [] and [p.name for p in tmp_path.iterdir()] == ['old.onnx']


def test_ctrl_c_during_build_cancels_it_and_exits_130(fake_trt, small_onnx, tmp_path,
                                                     monkeypatch):
    import os
    import signal

    from da3_ros import cli

    trt = fake_trt()
    steps = []

    def build(config):
        os.kill(os.getpid(), signal.SIGINT)       # Ctrl-C while TensorRT's C++ code runs
        steps.append(config.progress_monitor.step_complete('Building engine', 0))
        return None                               # what TensorRT returns after a cancel

    trt.script['build'] = build
    with pytest.raises(KeyboardInterrupt):
        tb.cached_or_build(small_onnx[1], tmp_path, 'fp32', gpu_name='GPU X')
    assert steps == [False]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(tb, 'cuda_device_name', lambda device=None: 'GPU X')
    code = cli.main(['build-engine', '--onnx', str(small_onnx[1]), '--precision', 'fp32',
                     '--cache-dir', str(tmp_path / 'c')])
    assert code == 130
    assert not list((tmp_path / 'c').glob('*.engine'))


def test_gpu_identity_tells_orin_modules_apart():
    nano = tb.gpu_identity('Orin', (8, 7), 8, 7.4 * 2**30, True,
                           'NVIDIA Jetson Orin Nano Developer Kit')
    agx = tb.gpu_identity('Orin', (8, 7), 16, 61.4 * 2**30, True,
                          'NVIDIA Jetson AGX Orin Developer Kit')
    nx8 = tb.gpu_identity('Orin', (8, 7), 8, 7.4 * 2**30, True, 'NVIDIA Jetson Orin NX')
    assert len({nano, agx, nx8}) == 3
    assert nano == 'Orin sm87 8SM 7GiB NVIDIA Jetson Orin Nano Developer Kit'
    desktop = tb.gpu_identity('NVIDIA H100 80GB HBM3', (9, 0), 132, 80 * 2**30, False)
    assert desktop == 'NVIDIA H100 80GB HBM3 sm90 132SM'


def test_board_model_reads_the_device_tree(tmp_path):
    (tmp_path / 'model').write_bytes(b'NVIDIA Jetson AGX Orin Developer Kit\0')
    assert tb.board_model(str(tmp_path / 'model')) == 'NVIDIA Jetson AGX Orin Developer Kit'
    assert tb.board_model(str(tmp_path / 'none')) == ''


@pytest.fixture
def fake_engine(fake_trt, tmp_path, monkeypatch):
    """(fake trt, engine path) of a stored fake engine whose key matches the fake module."""
    import contextlib

    from da3_ros.engine import tensorrt_backend as backend_mod

    trt = fake_trt()
    key = a_key(tensorrt_version='10.3.0')
    engine = ec.store(tmp_path, key, b'fake serialized engine', {})
    monkeypatch.setattr(torch.cuda, 'device', lambda device: contextlib.nullcontext())
    monkeypatch.setattr(backend_mod, 'cuda_device_name', lambda device=None: key.gpu_name)
    return trt, engine


def test_backend_opens_with_plugins_registered(fake_engine):
    trt, engine = fake_engine
    backend = TensorRTBackend(engine, expect_model='da3-small', device='cpu')
    assert backend.dtypes['depth'] is torch.float32
    names = [c[0] for c in trt.calls]
    assert names.index('init_libnvinfer_plugins') < names.index('deserialize_cuda_engine')


@pytest.mark.parametrize('failing, match', [('deserialize', 'cannot deserialize'),
                                            ('context', 'execution context')])
def test_backend_checks_deserialize_and_context(fake_engine, failing, match):
    trt, engine = fake_engine
    trt.script[failing] = False
    with pytest.raises(CheckpointError, match=match):
        TensorRTBackend(engine, device='cpu')


def test_backend_refuses_an_engine_of_another_tensorrt(fake_engine, fake_trt):
    _, engine = fake_engine
    fake_trt('10.8.0')
    with pytest.raises(CheckpointError, match='10.3.0.*10.8.0'):
        TensorRTBackend(engine, device='cpu')


def test_link_gives_a_stable_model_file(fake_engine, tmp_path):
    _, engine = fake_engine
    link = ec.link_engine(tmp_path / 'da3-small_336_fp16.engine', engine)
    assert link.is_symlink() and link.resolve() == engine.resolve()
    assert TensorRTBackend(link, device='cpu').path == engine.resolve()
    ec.link_engine(link, engine)                      # replaced, not an error
    (tmp_path / 'plain.engine').write_bytes(b'x')
    with pytest.raises(ConfigError, match='not a symlink'):
        ec.link_engine(tmp_path / 'plain.engine', engine)


def test_bind_checks_alignment_and_return_value(fake_trt):
    from da3_ros.engine.tensorrt_backend import ALIGNMENT, as_binding, bind

    trt = fake_trt()
    context = trt.Runtime(None).deserialize_cuda_engine(b'').create_execution_context()
    base = torch.arange(4096, dtype=torch.float32)
    view = base[3:3 + 1000].view(10, 100)           # contiguous, starts 12 bytes in
    aligned = as_binding(view, torch.float32)
    assert aligned.data_ptr() % ALIGNMENT == 0 and aligned.is_contiguous()
    assert torch.equal(aligned, view)
    assert as_binding(aligned, torch.float32) is aligned          # no copy when fine
    bind(context, 'images', aligned)
    with pytest.raises(CheckpointError, match='aligned'):
        bind(context, 'images', view)
    trt.script['set_address'] = False
    with pytest.raises(CheckpointError, match="refused the address of tensor 'images'"):
        bind(context, 'images', aligned)


def test_backend_never_enqueues_on_the_default_stream(fake_engine, monkeypatch):
    from types import SimpleNamespace

    _, engine = fake_engine
    backend = TensorRTBackend(engine, device='cpu')
    made = []
    monkeypatch.setattr(torch.cuda, 'Stream', lambda device: made.append(device) or
                        SimpleNamespace(cuda_stream=7))
    mine = SimpleNamespace(cuda_stream=5)
    assert backend._stream_for(mine) is mine          # torch's current stream, when not default
    own = backend._stream_for(SimpleNamespace(cuda_stream=0))
    assert own.cuda_stream == 7 and backend._stream_for(SimpleNamespace(cuda_stream=0)) is own
    assert len(made) == 1


# --- --verify: engine against ONNX Runtime ----------------------------------------------------

def test_relative_differences_and_tolerance():
    from da3_ros.engine.engine_verify import (
        EngineMismatch,
        check_differences,
        relative_differences,
    )

    ref = {'depth': np.array([1.0, 2.0, 4.0]), 'sky': np.array([0.0, 0.5, 1.0])}
    got = {'depth': np.array([1.0, 2.1, 4.0]), 'sky': np.array([0.0, 0.5, np.inf])}
    diffs = relative_differences(ref, got)
    assert diffs['depth'] == pytest.approx(0.1 / 4) and diffs['sky'] == float('inf')
    check_differences({'depth': diffs['depth']}, 0.05, 'x')
    with pytest.raises(EngineMismatch, match=r'beyond 0.01 .*depth 2.50e-02, sky inf'):
        check_differences(diffs, 0.01, 'x')
    with pytest.raises(EngineMismatch, match='shape'):
        relative_differences(ref, {'depth': np.zeros(2), 'sky': got['sky']})


@pytest.mark.parametrize('scale, code', [(1 + 1e-5, 0), (1.5, 4)])
def test_build_engine_verify(fake_trt, small_onnx, tmp_path, monkeypatch, scale, code):
    """build-engine --verify runs the engine and ONNX Runtime on one input; an engine off by
    more than the tolerance is deleted and the command exits with 4."""
    import contextlib

    from da3_ros import cli
    from da3_ros.engine import tensorrt_backend as backend_mod
    from da3_ros.engine.onnx_runtime import OnnxModel

    fake_trt()
    monkeypatch.setattr(tb, 'cuda_device_name', lambda device=None: 'GPU X')
    monkeypatch.setattr(backend_mod, 'cuda_device_name', lambda device=None: 'GPU X')
    monkeypatch.setattr(torch.cuda, 'device', lambda device: contextlib.nullcontext())
    ort = OnnxModel(small_onnx[1])
    seen = []

    def run_graph(self, feeds):          # what a (slightly or badly) wrong engine returns
        seen.append({k: tuple(v.shape) for k, v in feeds.items()})
        out = ort.run(feeds['images'].numpy())
        return {k: torch.from_numpy(v * scale) for k, v in out.items()}

    monkeypatch.setattr(backend_mod.TensorRTBackend, 'run_graph', run_graph)
    argv = ['build-engine', '--onnx', str(small_onnx[1]), '--precision', 'fp32',
            '--opt-views', '2', '--max-views', '3', '--cache-dir', str(tmp_path), '--verify']
    assert cli.main(argv) == code
    assert seen == [{'images': (1, 2, 3, H, W)}]
    assert bool(list(tmp_path.glob('*.engine'))) == (code == 0)
    assert bool(list(tmp_path.glob('*.json'))) == (code == 0)


def test_run_graph_checks_input_names(fake_engine):
    _, engine = fake_engine
    backend = TensorRTBackend(engine, device='cpu')
    with pytest.raises(InputError, match='takes inputs'):
        backend.run_graph({'images': torch.zeros(1, 2, 3, H, W), 'pose_enc': torch.zeros(1, 2, 9)})
    with pytest.raises(ConfigError, match='1..8 views'):
        backend.run_graph({'images': torch.zeros(1, 9, 3, H, W)})


@pytest.mark.parametrize('scale', [1 + 1e-5, 1.5])
def test_depth_node_verify_onnx_refuses_a_wrong_engine(fake_trt, small_onnx, tmp_path,
                                                       monkeypatch, scale):
    """The depth node's verify_onnx: the same check as build-engine --verify at start; a
    mismatch is a ConfigError naming the parameter (the node exits 2), a match is logged."""
    import contextlib
    from types import SimpleNamespace

    from da3_ros.engine import tensorrt_backend as backend_mod
    from da3_ros.engine.onnx_runtime import OnnxModel
    from da3_ros.engine.tensorrt_build import ViewProfile, cached_or_build
    from da3_ros.ros.depth.params import parse_depth_config
    from da3_ros.ros.depth.startup import verify_engine as _verify_engine

    fake_trt()
    monkeypatch.setattr(tb, 'cuda_device_name', lambda device=None: 'GPU X')
    monkeypatch.setattr(backend_mod, 'cuda_device_name', lambda device=None: 'GPU X')
    monkeypatch.setattr(torch.cuda, 'device', lambda device: contextlib.nullcontext())
    entry = cached_or_build(small_onnx[1], tmp_path, 'fp32', ViewProfile(1, 2, 3))
    ort = OnnxModel(small_onnx[1])
    monkeypatch.setattr(backend_mod.TensorRTBackend, 'run_graph', lambda self, feeds: {
        k: torch.from_numpy(v * scale) for k, v in ort.run(feeds['images'].numpy()).items()})
    cfg = SimpleNamespace(model_file=str(entry.engine_path), verify_onnx=str(small_onnx[1]),
                          device='cpu')
    logged = []
    log = SimpleNamespace(info=logged.append)
    if scale > 1.1:
        with pytest.raises(ConfigError, match=r"parameter 'verify_onnx': EngineMismatch.*"
                                              r'beyond 0.001'):
            _verify_engine(cfg, log)
        assert not logged
    else:
        _verify_engine(cfg, log)
        assert logged and logged[0].startswith('engine verified against ONNX Runtime')
    base = {'cameras': ['/cam'], 'model_file': 'x.onnx', 'verify_onnx': 'x.onnx'}
    with pytest.raises(ConfigError, match="parameter 'verify_onnx': checks a TensorRT engine"):
        parse_depth_config({**base, 'backend': 'onnxruntime'})
    assert parse_depth_config({**base, 'backend': 'tensorrt'}).verify_onnx == 'x.onnx'
