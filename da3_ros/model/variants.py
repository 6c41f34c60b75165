"""The released DA3 variants as frozen specs, and the Hugging Face repositories that hold them.

Numbers come from the official bundled yaml files. A spec can be shrunk with
`dataclasses.replace` (fewer blocks) to exercise a large variant's exact code path quickly.
"""
from __future__ import annotations

from dataclasses import dataclass

from da3_ros.errors import ConfigError

PATCH_PX = 14


@dataclass(frozen=True)
class BackboneSpec:
    """DINOv2-style ViT with DA3's alternating local/global attention."""

    embed_dim: int
    depth: int
    num_heads: int
    ffn: str                          # 'mlp' (GELU MLP) or 'swiglu'
    out_layers: tuple[int, ...]       # the four blocks whose tokens feed the heads
    alt_start: int                    # first block with camera token, QK-norm and RoPE; -1 = none
    cat_token: bool                   # heads see cat(local, global) tokens (2C wide)

    def __post_init__(self):
        if self.ffn not in ('mlp', 'swiglu'):
            raise ConfigError(f"ffn must be 'mlp' or 'swiglu', got {self.ffn!r}")
        if len(self.out_layers) != 4 or not all(0 <= i < self.depth for i in self.out_layers):
            raise ConfigError(f'out_layers must be 4 block indices < {self.depth}, '
                              f'got {self.out_layers}')
        if list(self.out_layers) != sorted(set(self.out_layers)):
            raise ConfigError(f'out_layers must be strictly increasing, got {self.out_layers}')
        if self.alt_start != -1 and not 1 < self.alt_start < self.depth:
            raise ConfigError(f'alt_start must be -1 or in (1, {self.depth}), '
                              f'got {self.alt_start}')
        if self.embed_dim % self.num_heads:
            raise ConfigError(f'embed_dim {self.embed_dim} is not divisible by '
                              f'{self.num_heads} heads')

    @property
    def out_dim(self) -> int:
        """Width of the tokens handed to the heads."""
        return 2 * self.embed_dim if self.cat_token else self.embed_dim


@dataclass(frozen=True)
class HeadSpec:
    """Dense head: 'dualdpt' (depth + rays, any-view models) or 'dpt' (depth + sky)."""

    kind: str
    features: int
    out_channels: tuple[int, int, int, int]

    def __post_init__(self):
        if self.kind not in ('dualdpt', 'dpt'):
            raise ConfigError(f"head kind must be 'dualdpt' or 'dpt', got {self.kind!r}")


@dataclass(frozen=True)
class ModelSpec:
    """One DepthAnything3Net: backbone, dense head, optional camera encoder/decoder and GS head."""

    name: str
    backbone: BackboneSpec
    head: HeadSpec
    gs_head: bool = False             # GIANT carries a Gaussian-splat DPT head (weights only)

    def __post_init__(self):
        if (self.head.kind == 'dualdpt') != (self.backbone.alt_start != -1):
            raise ConfigError(f'{self.name}: a DualDPT head goes with alternating attention')

    @property
    def has_camera(self) -> bool:
        """Any-view models have a camera encoder (conditioning) and decoder (poses)."""
        return self.backbone.alt_start != -1


@dataclass(frozen=True)
class NestedSpec:
    """NestedDepthAnything3Net: an any-view model scaled to metres by a metric model."""

    name: str
    anyview: ModelSpec
    metric: ModelSpec


_LARGE_HEAD = (256, 512, 1024, 1024)

_SMALL = ModelSpec('da3-small', BackboneSpec(384, 12, 6, 'mlp', (5, 7, 9, 11), 4, True),
                   HeadSpec('dualdpt', 64, (48, 96, 192, 384)))
_BASE = ModelSpec('da3-base', BackboneSpec(768, 12, 12, 'mlp', (5, 7, 9, 11), 4, True),
                  HeadSpec('dualdpt', 128, (96, 192, 384, 768)))
_LARGE = ModelSpec('da3-large', BackboneSpec(1024, 24, 16, 'mlp', (11, 15, 19, 23), 8, True),
                   HeadSpec('dualdpt', 256, _LARGE_HEAD))
_GIANT = ModelSpec('da3-giant', BackboneSpec(1536, 40, 24, 'swiglu', (19, 27, 33, 39), 13, True),
                   HeadSpec('dualdpt', 256, _LARGE_HEAD), gs_head=True)
_METRIC = ModelSpec('da3metric-large',
                    BackboneSpec(1024, 24, 16, 'mlp', (4, 11, 17, 23), -1, False),
                    HeadSpec('dpt', 256, _LARGE_HEAD))
_MONO = ModelSpec('da3mono-large', _METRIC.backbone, _METRIC.head)

VARIANTS: dict[str, ModelSpec | NestedSpec] = {
    spec.name: spec for spec in (_SMALL, _BASE, _LARGE, _GIANT, _METRIC, _MONO)}
VARIANTS['da3nested-giant-large'] = NestedSpec('da3nested-giant-large', _GIANT, _METRIC)

# Hugging Face repositories of the official checkpoints -> the config name they hold.
HF_REPOS: dict[str, str] = {
    'depth-anything/DA3-SMALL': 'da3-small',
    'depth-anything/DA3-BASE': 'da3-base',
    'depth-anything/DA3-LARGE': 'da3-large',
    'depth-anything/DA3-LARGE-1.1': 'da3-large',
    'depth-anything/DA3-GIANT': 'da3-giant',
    'depth-anything/DA3-GIANT-1.1': 'da3-giant',
    'depth-anything/DA3METRIC-LARGE': 'da3metric-large',
    'depth-anything/DA3MONO-LARGE': 'da3mono-large',
    'depth-anything/DA3NESTED-GIANT-LARGE': 'da3nested-giant-large',
    'depth-anything/DA3NESTED-GIANT-LARGE-1.1': 'da3nested-giant-large',
}


def get_spec(variant: str) -> ModelSpec | NestedSpec:
    """Spec of a config name ('da3-small') or of a Hugging Face id ('depth-anything/DA3-SMALL')."""
    name = HF_REPOS.get(variant, variant)
    if name not in VARIANTS:
        raise ConfigError(f'unknown DA3 variant {variant!r}; known: '
                          f'{sorted(VARIANTS)} or {sorted(HF_REPOS)}')
    return VARIANTS[name]
