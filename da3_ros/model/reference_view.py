"""Choice of the reference view (world frame) for S >= 3 views, as the official strategies do.

The official code then moves the chosen view to slot 0 and back; the backbone instead gives
the chosen view the reference camera token in place (the same function: backbone.py).
"""
from __future__ import annotations

import torch
from torch import Tensor

from da3_ros.errors import ConfigError

STRATEGIES = ('first', 'middle', 'saddle_balanced', 'saddle_sim_range')
MIN_VIEWS_FOR_SELECTION = 3


def _min_max(metric: Tensor) -> Tensor:
    low = metric.min(dim=1, keepdim=True).values
    high = metric.max(dim=1, keepdim=True).values
    return (metric - low) / (high - low + 1e-8)


def select_reference_view(tokens: Tensor, strategy: str) -> Tensor:
    """Index of the reference view per batch item.

    tokens: (B, S, T, C); token 0 of each view is its cls token
    returns (B,) int64
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f'unknown reference view strategy {strategy!r}; known: {STRATEGIES}')
    B, S = tokens.shape[:2]
    if strategy == 'first':
        return torch.zeros(B, dtype=torch.long, device=tokens.device)
    if strategy == 'middle':
        return torch.full((B,), S // 2, dtype=torch.long, device=tokens.device)
    cls = tokens[:, :, 0]
    unit = cls / cls.norm(dim=-1, keepdim=True)
    sim = unit @ unit.transpose(1, 2) - torch.eye(S, device=tokens.device)[None]
    if strategy == 'saddle_sim_range':
        return (sim.max(dim=-1).values - sim.min(dim=-1).values).argmax(dim=1)
    metrics = (sim.sum(dim=-1) / (S - 1), cls.norm(dim=-1), unit.var(dim=-1))
    balance = sum((_min_max(m) - 0.5).abs() for m in metrics)
    return balance.argmin(dim=1)
