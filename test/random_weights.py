"""Seeded random weights for tests: no tensor left at a symmetric default (zeros, ones)."""
from __future__ import annotations

import torch
from torch import nn


def randomize_(net: nn.Module, seed: int) -> nn.Module:
    """Perturb every tensor in place (tied tensors once); pos_embed and tokens become N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        seen = set()
        for name, p in net.state_dict(keep_vars=True).items():
            if id(p) in seen:
                continue
            seen.add(id(p))
            if name.endswith(('pos_embed', 'cls_token', 'camera_token')):
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.add_(0.02 * torch.randn(p.shape, generator=g))
    return net
