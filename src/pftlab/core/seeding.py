"""Every random choice derives from (seed, purpose, *keys), so results never depend on order.

Client 7's data order is the same whether it trains first or last, alone or beside others.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, purpose: str, *keys: int | str) -> int:
    """A 63-bit integer seed that depends only on (seed, purpose, keys)."""
    text = "/".join([str(seed), purpose, *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def numpy_rng(seed: int, purpose: str, *keys: int | str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, purpose, *keys))


def torch_generator(seed: int, purpose: str, *keys: int | str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, purpose, *keys))
