"""Checkpoint loading: files written the way the official hub mixin writes them
(safetensors save_model of a wrapper holding the net as `.model`, config.json with model_name)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file, save_model
from torch import nn

from da3_ros.errors import CheckpointError
from da3_ros.model import load, save
from official_nets import assert_outputs_match, build_pair
from random_weights import randomize_

ANYVIEW_KEYS = ('depth', 'depth_conf', 'extrinsics', 'intrinsics')


class _HubWrapper(nn.Module):
    """The official `DepthAnything3` keeps the network as `self.model`."""

    def __init__(self, net):
        super().__init__()
        self.model = net


@pytest.fixture(scope='module')
def official_small():
    official, _ = build_pair('da3-small')
    return randomize_(official, seed=3)


@pytest.fixture()
def official_ckpt(tmp_path, official_small):
    save_model(_HubWrapper(official_small), str(tmp_path / 'model.safetensors'))
    (tmp_path / 'config.json').write_text(json.dumps({'model_name': 'da3-small', 'extra': 1}))
    return tmp_path


def test_loads_official_file_and_matches_official_forward(official_ckpt, official_small):
    stored = load_file(official_ckpt / 'model.safetensors')
    assert len(stored) == 437                      # 6 tied aux-LN names dropped by save_model
    assert 'model.head.scratch.output_conv2_aux.3.2.weight' not in stored
    net = load(official_ckpt)
    assert not net.training
    ln3 = net.head.scratch.output_conv2_aux[3][2].weight
    assert torch.equal(ln3, stored['model.head.scratch.output_conv2_aux.0.2.weight'])
    x = torch.randn(1, 2, 3, 42, 70, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_outputs_match(net(x), official_small(x), ANYVIEW_KEYS, tol=1e-5)


def test_loads_by_hub_id_through_huggingface_cache(official_ckpt, tmp_path, monkeypatch):
    """An HF id resolves through huggingface_hub; here offline, from a pre-filled cache."""
    calls = []

    def fake_download(repo_id, allow_patterns=None, **kwargs):
        calls.append((repo_id, tuple(allow_patterns)))
        return str(official_ckpt)
    monkeypatch.setattr('huggingface_hub.snapshot_download', fake_download)
    net = load('depth-anything/DA3-SMALL')
    assert calls == [('depth-anything/DA3-SMALL', ('config.json', 'model.safetensors'))]
    assert net.spec.name == 'da3-small'


def test_unknown_hub_id_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    with pytest.raises(CheckpointError, match='depth-anything/DA3-NOPE'):
        load('depth-anything/DA3-NOPE')


def test_missing_folder_and_files(tmp_path, official_ckpt):
    with pytest.raises(CheckpointError, match='does not exist'):
        load(tmp_path / 'nowhere')
    (official_ckpt / 'model.safetensors').unlink()
    with pytest.raises(CheckpointError, match='model.safetensors is missing'):
        load(official_ckpt)
    (official_ckpt / 'config.json').unlink()
    with pytest.raises(CheckpointError, match='config.json is missing'):
        load(official_ckpt)


def test_unknown_model_name(official_ckpt):
    (official_ckpt / 'config.json').write_text(json.dumps({'model_name': 'da3-huge'}))
    with pytest.raises(CheckpointError, match="unknown model 'da3-huge'"):
        load(official_ckpt)


def _rewrite(folder, edit):
    tensors = load_file(folder / 'model.safetensors')
    edit(tensors)
    save_file(tensors, str(folder / 'model.safetensors'))


def test_missing_key_is_named(official_ckpt):
    _rewrite(official_ckpt, lambda t: t.pop('model.cam_dec.fc_t.bias'))
    with pytest.raises(CheckpointError, match=r"1 missing \['cam_dec.fc_t.bias'\]"):
        load(official_ckpt)


def test_unexpected_key_is_named(official_ckpt):
    _rewrite(official_ckpt, lambda t: t.update({'model.head.extra.weight': torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"1 unexpected \['head.extra.weight'\]"):
        load(official_ckpt)


def test_wrong_shape_is_named(official_ckpt):
    _rewrite(official_ckpt, lambda t: t.update({'model.cam_dec.fc_t.bias': torch.zeros(4)}))
    with pytest.raises(CheckpointError, match=r'cam_dec.fc_t.bias: file \(4,\) vs net \(3,\)'):
        load(official_ckpt)


def test_checkpoint_of_another_variant_is_rejected(official_ckpt):
    (official_ckpt / 'config.json').write_text(json.dumps({'model_name': 'da3-base'}))
    with pytest.raises(CheckpointError, match='wrong shapes'):
        load(official_ckpt)


def test_corrupt_weights_file(official_ckpt):
    (official_ckpt / 'model.safetensors').write_bytes(b'not a safetensors file')
    with pytest.raises(CheckpointError, match='cannot read'):
        load(official_ckpt)


def test_save_writes_the_official_layout(tmp_path, official_small):
    from safetensors.torch import load_model
    net = load(_write(tmp_path / 'a', official_small))
    save(net, tmp_path / 'b')
    ours_keys = set(load_file(tmp_path / 'b' / 'model.safetensors'))
    assert ours_keys == set(load_file(tmp_path / 'a' / 'model.safetensors'))
    assert json.loads((tmp_path / 'b' / 'config.json').read_text()) == {'model_name': 'da3-small'}
    official, _ = build_pair('da3-small')
    missing, unexpected = load_model(_HubWrapper(official), tmp_path / 'b' / 'model.safetensors',
                                     strict=True)
    assert not missing and not unexpected
    for key, value in official.state_dict().items():
        assert torch.equal(value, official_small.state_dict()[key]), key
    assert not list((tmp_path / 'b').glob('.*'))     # no temporary files left behind


def _write(folder, official):
    folder.mkdir()
    save_model(_HubWrapper(official), str(folder / 'model.safetensors'))
    (folder / 'config.json').write_text(json.dumps({'model_name': 'da3-small'}))
    return folder
