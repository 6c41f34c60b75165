"""Every released variant: same state-dict keys and shapes as the official network, both ways."""
from __future__ import annotations

import warnings

import pytest
import torch

from da3_ros.errors import ConfigError
from da3_ros.model import HF_REPOS, VARIANTS, build, get_spec
from official_nets import no_init, official_config

# Deduplicated parameter counts and key counts in the official files.
EXPECTED = {
    'da3-small': (34_299_463, 443, 437),
    'da3-base': (135_366_599, 443, 437),
    'da3-large': (410_941_767, 643, 637),
    'da3-giant': (1_355_674_125, 977, 971),
    'da3metric-large': (334_171_394, 406, 406),
    'da3mono-large': (334_171_394, 406, 406),
    'da3nested-giant-large': (1_689_845_519, 1383, 1377),
}


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_state_dict_equals_official_both_ways(name):
    from depth_anything_3.cfg import create_object
    with no_init(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        official = create_object(official_config(name))
    with torch.device('meta'):
        ours = build(name)
    ref_shapes = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert our_shapes == ref_shapes
    params, keys, file_keys = EXPECTED[name]
    assert sum(p.numel() for p in ours.parameters()) == params
    assert len(our_shapes) == keys
    tied = sum(len(g) - 1 for g in _tied(ours))
    assert keys - tied == file_keys
    ours.load_state_dict(official.state_dict(), strict=True, assign=True)
    official.load_state_dict(ours.state_dict(), strict=True, assign=True)


def _tied(net):
    from da3_ros.model.checkpoint import tied_groups
    return tied_groups(net)


def test_every_hf_repo_resolves_to_a_variant():
    assert len(HF_REPOS) == 10
    for repo, name in HF_REPOS.items():
        assert get_spec(repo) is VARIANTS[name]
    with pytest.raises(ConfigError, match='unknown DA3 variant'):
        get_spec('da3-tiny')
