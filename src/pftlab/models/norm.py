"""The normalisation layer `model.norm` asks for: BatchNorm, GroupNorm, or none.

GroupNorm keeps no running statistics (no buffers), so a model with it stays a pure function of
its weights: FedAvg averages only parameters and the batched engine can run it; BatchNorm's
running statistics are buffers, which send a model's personalization through the plain loop.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

Norm = Literal["none", "batch", "group"]


def group_count(channels: int) -> int:
    """GroupNorm's number of groups: the largest divisor of `channels` that is at most 32 (Wu & He's
    default) and leaves at least 4 channels per group (so 16 -> 4, 32 -> 8, 64 -> 16, >= 128 -> 32)."""
    cap = max(1, min(32, channels // 4))
    return max(g for g in range(1, cap + 1) if channels % g == 0)


def norm_layer(norm: Norm, channels: int) -> nn.Module | None:
    """The layer that follows a convolution with `channels` outputs, or None for `none`."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(group_count(channels), channels)
    if norm == "none":
        return None
    raise ValueError(f"unknown norm {norm!r}; use 'none', 'batch' or 'group'")
