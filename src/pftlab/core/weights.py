"""Operations on weight dictionaries shared by the global stage (FedAvg) and personalization (soups)."""

from __future__ import annotations

from typing import cast

import torch

Weights = dict[str, torch.Tensor]


def weighted_average(states: list[Weights], weights: list[float]) -> Weights:
    """Weight-wise mean; integer buffers (e.g. BatchNorm's step counter) are taken from the first state."""
    total = float(sum(weights))
    out: Weights = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = cast(torch.Tensor, sum(w / total * s[key] for s, w in zip(states, weights, strict=True)))
        else:
            out[key] = first.clone()
    return out


def all_finite(tensors: Weights) -> bool:
    """No NaN or inf in any floating-point tensor (a diverged client's weights are not used)."""
    return all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())
