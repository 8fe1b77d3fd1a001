"""The cross-client matrix: correct[i, j] = test samples of client j that client i's model gets right.

All clients' test sets are concatenated once; each model is run over the whole pool in large
batches and the hits are summed per owner. A model whose backbone is the global one (LP) only
needs its head applied to the pool's global features: one matrix multiply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pftlab.core.compute import autocast, on_device
from pftlab.data.dataset import Dataset, FederatedData
from pftlab.models.heads import features, head_module


@dataclass(frozen=True)
class EvalPool:
    x: torch.Tensor
    y: torch.Tensor
    owner: torch.Tensor
    sizes: np.ndarray

    @classmethod
    def of(cls, fed: FederatedData) -> EvalPool:
        tests = [c.test for c in fed.clients]
        return cls(
            on_device(torch.from_numpy(np.concatenate([t.x for t in tests]))),
            on_device(torch.from_numpy(np.concatenate([t.y for t in tests]))),
            on_device(torch.from_numpy(np.concatenate([np.full(len(t), i) for i, t in enumerate(tests)]))),
            np.array([len(t) for t in tests]),
        )

    def hits_per_client(self, logits: torch.Tensor) -> np.ndarray:
        hits = (logits.argmax(1) == self.y).to(torch.int64)
        per_client = torch.zeros(len(self.sizes), dtype=torch.int64, device=hits.device).index_add_(0, self.owner, hits)
        return per_client.cpu().numpy()


@torch.no_grad()
def correct_row(model: nn.Module, pool: EvalPool, batch_size: int = 2048) -> np.ndarray:
    """Hits of one model on every client's test set."""
    model.eval()
    with autocast():
        logits = torch.cat([model(pool.x[i : i + batch_size]) for i in range(0, len(pool.y), batch_size)])
    return pool.hits_per_client(logits)


@torch.no_grad()
def correct_row_from_features(head: nn.Module, pool: EvalPool, pool_features: torch.Tensor) -> np.ndarray:
    head.eval()
    return pool.hits_per_client(head(pool_features))


@torch.no_grad()
def accuracy(model: nn.Module, data: Dataset, batch_size: int = 2048) -> float:
    """Accuracy (%) of one model on one dataset (a client's validation split)."""
    model.eval()
    x, y = on_device(torch.from_numpy(data.x)), on_device(torch.from_numpy(data.y))
    with autocast():
        hits = sum(
            int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
            for i in range(0, len(y), batch_size)
        )
    return 100.0 * hits / max(len(y), 1)


@torch.no_grad()
def hits_per_image(model: nn.Module, pool: EvalPool, head: str = "head") -> np.ndarray:
    """Whether the model gets each pooled test image right (P,): the full matrix before summing per
    client, from which sampled evaluation can be replayed (tests/evaluate/test_sampled.py)."""
    head_net = head_module(model, head)
    head_net.eval()
    hits: np.ndarray = (head_net(pool_features(model, pool, head)).argmax(1) == pool.y).cpu().numpy()
    return hits


def pool_features(model: nn.Module, pool: EvalPool, head: str = "head") -> torch.Tensor:
    return features(model, head, pool.x)


__all__ = ["EvalPool", "accuracy", "correct_row", "correct_row_from_features", "hits_per_image", "pool_features"]
