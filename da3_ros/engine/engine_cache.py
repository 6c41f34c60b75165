"""The engine cache: what a TensorRT engine depends on, where it lives, and when to rebuild.

Pure Python (no TensorRT): view profiles, precision names, the da3_ros metadata of an ONNX
file, the cache key (`EngineKey`: sha256 of the ONNX bytes and external data, TensorRT
version, GPU name, precision, view profile, da3_ros version), file naming, JSON sidecars and
atomic writes. `tensorrt_build` builds what this module says is missing.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import da3_ros
from da3_ros.engine.onnx_export import ANYVIEW_OUTPUTS, MONO_OUTPUTS
from da3_ros.engine.onnx_runtime import REQUIRED_METADATA
from da3_ros.errors import CheckpointError, ConfigError
from da3_ros.files import write_atomic
from da3_ros.model.variants import PATCH_PX, VARIANTS

PRECISIONS = ('fp16', 'fp32')
GRAPH_INPUTS = (('images',), ('images', 'pose_enc'))
GRAPH_OUTPUTS = (ANYVIEW_OUTPUTS, MONO_OUTPUTS)


@dataclass(frozen=True)
class ViewProfile:
    """Optimization profile over the view axis S: 1 <= min_views <= opt_views <= max_views."""

    min_views: int = 1
    opt_views: int = 2
    max_views: int = 8

    def __post_init__(self):
        values = (self.min_views, self.opt_views, self.max_views)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ConfigError(f'view counts must be ints, got min/opt/max {values}')
        if not 1 <= self.min_views <= self.opt_views <= self.max_views:
            raise ConfigError(f'views need 1 <= min <= opt <= max, got min/opt/max {values}')

    def shapes(self, input_name: str, height: int, width: int
               ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) shapes of 'images' (1, S, 3, H, W) or 'pose_enc' (1, S, 9)."""
        tails = {'images': (3, height, width), 'pose_enc': (9,)}
        if input_name not in tails:
            raise ConfigError(f'no profile for graph input {input_name!r}; known: {list(tails)}')
        views = (self.min_views, self.opt_views, self.max_views)
        return tuple((1, s, *tails[input_name]) for s in views)


def check_precision(precision: str) -> str:
    """The precision name if it is one of PRECISIONS, else ConfigError."""
    if precision not in PRECISIONS:
        raise ConfigError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    return precision


@dataclass(frozen=True)
class OnnxInfo:
    """What a da3_ros ONNX file declares in its metadata_props (checked against its graph).

    files: the .onnx file, then its external data files (sorted), all hashed for the key
    """

    path: Path
    model: str
    height: int
    width: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    files: tuple[Path, ...]


def read_onnx_info(path: str | os.PathLike) -> OnnxInfo:
    """Read and validate the da3_ros metadata of an ONNX file (external data is not loaded).

    Raises CheckpointError for a missing or unreadable file and for files that were not
    written by `onnx_export.export_onnx` (no or inconsistent da3_ros metadata).
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'ONNX file {path} does not exist')
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:    # protobuf raises its own DecodeError, onnx its own errors
        raise CheckpointError(f'{path} is not a readable ONNX file: {err}') from err
    meta = {p.key: p.value for p in proto.metadata_props}
    if missing := [k for k in REQUIRED_METADATA if k not in meta]:
        raise CheckpointError(f'{path} lacks da3_ros metadata {missing}; export it with '
                              f'`da3-ros export-onnx` (da3_ros.engine.onnx_export)')
    inputs, outputs = tuple(meta['inputs'].split(',')), tuple(meta['outputs'].split(','))
    initialized = {t.name for t in proto.graph.initializer}
    graph_inputs = tuple(i.name for i in proto.graph.input if i.name not in initialized)
    graph_outputs = tuple(o.name for o in proto.graph.output)
    if inputs not in GRAPH_INPUTS or outputs not in GRAPH_OUTPUTS or (
            (graph_inputs, graph_outputs) != (inputs, outputs)):
        raise CheckpointError(f'{path}: metadata inputs/outputs {inputs}/{outputs} and graph '
                              f'{graph_inputs}/{graph_outputs} are not a da3_ros export')
    if meta['model'] not in VARIANTS:
        raise CheckpointError(f'{path} names unknown model {meta["model"]!r}')
    try:
        height, width = int(meta['height']), int(meta['width'])
    except ValueError as err:
        raise CheckpointError(f'{path}: bad height/width metadata: {err}') from err
    if height <= 0 or width <= 0 or height % PATCH_PX or width % PATCH_PX:
        raise CheckpointError(f'{path}: size {height}x{width} is not a multiple of {PATCH_PX}')
    return OnnxInfo(path, meta['model'], height, width, inputs, outputs,
                    (path, *_external_files(proto, path)))


def _external_files(proto, path: Path) -> list[Path]:
    locations = {entry.value for tensor in proto.graph.initializer
                 if tensor.data_location == tensor.EXTERNAL
                 for entry in tensor.external_data if entry.key == 'location'}
    files = [path.parent / loc for loc in sorted(locations)]
    if absent := [str(f) for f in files if not f.is_file()]:
        raise CheckpointError(f'{path}: external data file(s) {absent} are missing')
    return files


def files_sha256(files: tuple[Path, ...]) -> str:
    """sha256 hex of the files' bytes, concatenated in the given order."""
    digest = hashlib.sha256()
    for file in files:
        with open(file, 'rb') as f:
            for block in iter(functools.partial(f.read, 1 << 24), b''):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. model/height/width/inputs/outputs come from the ONNX
    metadata (so they are covered by onnx_sha256) and make the sidecar self-describing."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str
    min_views: int
    opt_views: int
    max_views: int
    da3_ros_version: str
    model: str
    height: int
    width: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def __post_init__(self):
        texts = (self.onnx_sha256, self.tensorrt_version, self.gpu_name, self.da3_ros_version,
                 self.model, *self.inputs, *self.outputs)
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError(f'engine key text fields must be strings, got {texts}')
        if not all(type(v) is int and v > 0 for v in (self.height, self.width)):
            raise ConfigError(f'engine key size must be positive ints, got '
                              f'{self.height!r}x{self.width!r}')
        check_precision(self.precision)
        ViewProfile(self.min_views, self.opt_views, self.max_views)

    @property
    def digest(self) -> str:
        """sha256 hex of the canonical JSON of all fields."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def profile(self) -> ViewProfile:
        return ViewProfile(self.min_views, self.opt_views, self.max_views)

    @property
    def file_stem(self) -> str:
        """`<model>_<H>x<W>_<precision>_<digest[:16]>`."""
        return f'{self.model}_{self.height}x{self.width}_{self.precision}_{self.digest[:16]}'

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> EngineKey:
        """Inverse of to_json; CheckpointError for missing, unknown or mistyped fields."""
        fields = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != fields:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise CheckpointError(f'engine sidecar key fields {got} != {sorted(fields)}')
        try:
            return cls(**{k: tuple(v) if k in ('inputs', 'outputs') else v
                          for k, v in data.items()})
        except (TypeError, ConfigError) as err:
            raise CheckpointError(f'bad engine sidecar: {err}') from err


def make_key(info: OnnxInfo, precision: str, profile: ViewProfile, tensorrt_version: str,
             gpu_name: str) -> EngineKey:
    """The cache key of building `info`'s file with these settings (hashes the ONNX files)."""
    return EngineKey(files_sha256(info.files), tensorrt_version, gpu_name,
                     check_precision(precision), profile.min_views, profile.opt_views,
                     profile.max_views, da3_ros.__version__, info.model, info.height,
                     info.width, info.inputs, info.outputs)


def engine_files(cache_dir: str | os.PathLike, key: EngineKey) -> tuple[Path, Path]:
    """(engine, JSON sidecar) paths of a key inside cache_dir."""
    stem = Path(cache_dir) / key.file_stem
    return stem.with_suffix('.engine'), stem.with_suffix('.json')


def timing_cache_file(cache_dir: str | os.PathLike, tensorrt_version: str, gpu_name: str,
                      precision: str) -> Path:
    """The timing cache shared by the builds of one TensorRT version, GPU and precision (fp32
    and fp16 builds time different tactics; they never share a cache)."""
    gpu = re.sub(r'[^A-Za-z0-9.]+', '-', gpu_name).strip('-') or 'gpu'
    precision = check_precision(precision)
    return Path(cache_dir) / f'timing_trt{tensorrt_version}_{gpu}_{precision}.cache'


def link_engine(link: str | os.PathLike, engine_path: Path) -> Path:
    """Make `link` a symlink to engine_path (relative when in the same folder), replacing an
    existing link atomically; TensorRTBackend resolves it and finds the sidecar beside the
    engine. ConfigError when link exists and is not a symlink, or its folder is missing."""
    link, engine_path = Path(link), Path(engine_path).resolve()
    if not link.parent.is_dir():
        raise ConfigError(f'folder of {link} does not exist')
    if link.exists() and not link.is_symlink():
        raise ConfigError(f'{link} exists and is not a symlink; not replacing it')
    same = link.parent.resolve() == engine_path.parent
    target = engine_path.name if same else str(engine_path)
    tmp = link.parent / f'.{link.name}.{os.getpid()}.tmp'
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link


def read_sidecar(path: Path) -> tuple[EngineKey, int]:
    """(key, engine size in bytes) from a sidecar; CheckpointError if unreadable."""
    try:
        data = json.loads(path.read_text())
        return EngineKey.from_json(data['key']), int(data['engine_bytes'])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f'cannot read engine sidecar {path}: {err}') from err


def store(cache_dir: str | os.PathLike, key: EngineKey, engine, build_info: dict) -> Path:
    """Write a serialized engine and its sidecar (engine first, sidecar last: the sidecar
    marks the pair complete). build_info: extra JSON fields, not part of the key."""
    engine_path, sidecar_path = engine_files(cache_dir, key)
    write_atomic(engine_path, engine)
    sidecar = {'key': key.to_json(), 'engine_bytes': engine_path.stat().st_size,
               'build': build_info}
    write_atomic(sidecar_path, (json.dumps(sidecar, indent=1) + '\n').encode())
    return engine_path


def lookup(cache_dir: str | os.PathLike, key: EngineKey) -> str | None:
    """Why the key's engine must be (re)built, or None if the cached pair is usable.

    Reasons: 'missing' (no engine), 'no sidecar', 'unreadable sidecar', 'sidecar for another
    key' (edited or hash-prefix collision), 'engine size differs from sidecar' (truncated).
    """
    engine_path, sidecar_path = engine_files(cache_dir, key)
    if not engine_path.is_file():
        return 'missing'
    if not sidecar_path.is_file():
        return 'no sidecar'
    try:
        stored, size = read_sidecar(sidecar_path)
    except CheckpointError:
        return 'unreadable sidecar'
    if stored != key:
        return 'sidecar for another key'
    if engine_path.stat().st_size != size:
        return 'engine size differs from sidecar'
    return None
