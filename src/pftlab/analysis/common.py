"""What every analysis starts from: the federation, the (cached) global model and the test pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pftlab.data.benchmarks import build_federation
from pftlab.data.dataset import FederatedData
from pftlab.evaluate.matrix import EvalPool, correct_row
from pftlab.experiment.checkpoint import global_model
from pftlab.experiment.config import Config
from pftlab.experiment.runner import set_threads
from pftlab.models import build_model


@dataclass
class Setup:
    cfg: Config
    fed: FederatedData
    model: nn.Module
    weights: dict[str, torch.Tensor]
    pool: EvalPool


def setup(cfg: Config) -> Setup:
    set_threads(cfg.runtime.threads)
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights, _, _ = global_model(model, fed, cfg)
    return Setup(cfg, fed, model, weights, EvalPool.of(fed))


def local_and_global(model: nn.Module, pool: EvalPool, client: int) -> tuple[float, float]:
    """Accuracy (%) on the client's own test set and pooled over every other client's."""
    hits, sizes = correct_row(model, pool), pool.sizes
    local = 100.0 * hits[client] / sizes[client]
    return local, 100.0 * (hits.sum() - hits[client]) / (sizes.sum() - sizes[client])


def mean_rows(rows: list[dict[str, Any]], keys: tuple[str, ...], by: tuple[str, ...]) -> list[dict[str, Any]]:
    """Average `keys` over rows that share the values of `by` (clients averaged out), keeping first-seen order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r)
    return [
        {**dict(zip(by, key, strict=True)), **{k: round(float(np.mean([r[k] for r in rs])), 4) for k in keys}}
        for key, rs in groups.items()
    ]
