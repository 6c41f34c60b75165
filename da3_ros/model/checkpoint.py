"""Official checkpoints: a folder or Hugging Face repo with config.json + model.safetensors.

Keys in the file carry the hub wrapper's `model.` prefix, and tied tensors are stored once
(the aux-head LayerNorm). Loading is strict: missing, unexpected or
mis-shaped tensors raise CheckpointError naming them.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from torch import nn

from da3_ros.errors import CheckpointError, ConfigError
from da3_ros.files import atomic_path
from da3_ros.model.da3 import DA3Net, NestedDA3Net, build
from da3_ros.model.variants import VARIANTS, get_spec

log = logging.getLogger(__name__)

CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'
KEY_PREFIX = 'model.'


def resolve(name_or_dir: str | os.PathLike) -> Path:
    """Local folder holding the checkpoint files; downloads a Hugging Face repo if needed."""
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_dir)
    if path.exists() or name.count('/') != 1 or name.startswith(('.', '/', '~')):
        raise CheckpointError(f'checkpoint folder {name!r} does not exist')
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    try:
        return Path(snapshot_download(name, allow_patterns=[CONFIG_FILE, WEIGHTS_FILE]))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as err:
        raise CheckpointError(f'cannot fetch Hugging Face repo {name!r}: '
                              f'{type(err).__name__}: {err}') from err


def read_model_name(folder: Path) -> str:
    """The `model_name` of config.json (one of the seven official config names)."""
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise CheckpointError(f'{config} is missing')
    try:
        name = json.loads(config.read_text())['model_name']
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f'{config} has no readable "model_name": {err}') from err
    if name not in VARIANTS:
        raise CheckpointError(f'{config} names unknown model {name!r}; known: {sorted(VARIANTS)}')
    return name


def tied_groups(net: nn.Module) -> list[list[str]]:
    """State-dict names that share one tensor, each group sorted (only groups of size > 1)."""
    groups: dict[int, list[str]] = {}
    for name, tensor in net.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(name)
    return [sorted(names) for names in groups.values() if len(names) > 1]


def match_state_dict(net: nn.Module, stored: dict[str, torch.Tensor], source: str
                     ) -> dict[str, torch.Tensor]:
    """Full state dict for net from stored tensors (prefix stripped), tied aliases filled in.

    Raises CheckpointError listing missing/unexpected keys and shape mismatches.
    """
    expected = net.state_dict(keep_vars=True)
    aliases = {name: group for group in tied_groups(net) for name in group}
    full, missing = {}, []
    for name in expected:
        present = [n for n in aliases.get(name, [name]) if n in stored]
        if not present:
            missing.append(name)
            continue
        full[name] = stored[present[0]]
    unexpected = sorted(set(stored) - set(expected))
    wrong = [f'{n}: file {tuple(t.shape)} vs net {tuple(expected[n].shape)}'
             for n, t in full.items() if t.shape != expected[n].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f'{source} does not match the network: {len(missing)} missing '
            f'{missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}, '
            f'{len(wrong)} wrong shapes {wrong[:5]}')
    return full


def load(name_or_dir: str | os.PathLike, device: str | torch.device = 'cpu'
         ) -> DA3Net | NestedDA3Net:
    """Network with official weights from a Hugging Face id or a local folder, in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    folder = resolve(name_or_dir)
    model_name = read_model_name(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f'{weights} is missing')
    try:
        raw = load_file(weights, device=str(device))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f'cannot read {weights}: {err}') from err
    bad = sorted(k for k in raw if not k.startswith(KEY_PREFIX))
    stored = {k[len(KEY_PREFIX):]: v for k, v in raw.items() if k.startswith(KEY_PREFIX)}
    stored.update({k: raw[k] for k in bad})   # reported as unexpected below
    with torch.device('meta'):
        net = build(model_name)
    net.load_state_dict(match_state_dict(net, stored, str(weights)), strict=True, assign=True)
    log.info('loaded %s (%s) from %s', model_name, folder, weights)
    return net.eval()


def save(net: DA3Net | NestedDA3Net, folder: str | os.PathLike) -> Path:
    """Write config.json + model.safetensors in the official layout (tied tensors once).

    Files are written to a temporary name first and renamed, so a crash leaves no half file.
    """
    from safetensors.torch import save_file
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if net.spec.name not in VARIANTS or get_spec(net.spec.name) != net.spec:
        raise ConfigError(f'only released variants can be saved, not a modified {net.spec.name}')
    state = net.state_dict()
    dropped = {name for group in tied_groups(net) for name in group[1:]}
    tensors = {KEY_PREFIX + k: v.contiguous() for k, v in state.items() if k not in dropped}
    for name, write in ((WEIGHTS_FILE, lambda p: save_file(tensors, p)),
                        (CONFIG_FILE, lambda p: Path(p).write_text(
                            json.dumps({'model_name': net.spec.name}) + '\n'))):
        with atomic_path(folder / name) as tmp:
            write(str(tmp))
    return folder
