"""The Depth Anything 3 networks in PyTorch, state-dict compatible with the official ones.

    net = build('da3-small')                       # random weights
    net = load('depth-anything/DA3-SMALL')          # official checkpoint (HF id or folder)
    out = net(images)                               # images (B, S, 3, H, W) -> DA3Output
"""
from da3_ros.model.checkpoint import load, save
from da3_ros.model.da3 import DA3Net, DA3Output, NestedDA3Net, build
from da3_ros.model.variants import HF_REPOS, VARIANTS, ModelSpec, NestedSpec, get_spec

__all__ = ['DA3Net', 'DA3Output', 'HF_REPOS', 'ModelSpec', 'NestedDA3Net', 'NestedSpec',
           'VARIANTS', 'build', 'get_spec', 'load', 'save']
