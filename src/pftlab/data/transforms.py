"""Shape transforms that put sources of different sizes on one footing (digits domains at 32x32 RGB)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pftlab.core.errors import UserError


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, C, H, W) float images to (N, C, size, size)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = F.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear", align_corners=False)
    return out.clamp_(0, 1).numpy()


def to_rgb(x: np.ndarray) -> np.ndarray:
    """Grey (N, 1, H, W) to RGB (N, 3, H, W) by repeating the channel; RGB passes through."""
    return np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x


def subsample(n_total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct sorted indices of range(n_total)."""

    if n > n_total:
        raise UserError(f"asked for {n} samples but the source has {n_total}")
    return np.sort(rng.choice(n_total, size=n, replace=False))
