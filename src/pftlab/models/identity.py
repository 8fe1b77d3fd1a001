"""What computed a result: the model's identity and the compute setting, as keys for saved state.

Two models with the same parameter names and shapes (a CNN with its ReLUs swapped for Tanh) must
never share a cached checkpoint or run; neither may two thread counts, devices or precisions,
which change the rounding and so the numbers. Both dicts are JSON-able and go into every key
that decides whether saved state is reused, and into run.json so a run says what made it.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import torch
from torch import nn


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model_identity(model: nn.Module) -> dict[str, Any]:
    """The module's class, its structure (the printed module tree, every tensor's name, shape and
    dtype), the source of its class where Python can find it, and a hash of its current weights.

    Called on a freshly built model, the weights hash pins the initialisation (and so the seed);
    the source hash catches a forward pass edited without a change of layers.
    """
    cls = type(model)
    shapes = "".join(f"{k}:{tuple(v.shape)}:{v.dtype};" for k, v in model.state_dict().items())
    try:
        source = _sha(inspect.getsource(cls))
    except (OSError, TypeError):  # defined in a notebook cell or built dynamically
        source = None
    weights = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        weights.update(k.encode())
        weights.update(v.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "structure": _sha(repr(model) + shapes),
        "source": source,
        "initial_weights": weights.hexdigest(),
    }


def compute_identity(model: nn.Module) -> dict[str, Any]:
    """The setting that changes a result's rounding: torch's thread count (now), device, precision, torch build."""
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    return {
        "threads": torch.get_num_threads(),
        "device": first.device.type if first is not None else "cpu",
        "dtype": str(first.dtype).removeprefix("torch.") if first is not None else "float32",
        "torch": torch.__version__,
    }
