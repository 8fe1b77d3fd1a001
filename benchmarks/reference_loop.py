"""The usual way, as FL research code (PFLlib, FL-bench) runs personalization: the reference `pftlab bench` beats.

One deep-copied model object per client, a DataLoader per client and split, a sequential
Python loop over clients and epochs; linear probing freezes the backbone but still runs it
every epoch; the cross-client matrix evaluates every (model i, client j) pair through client
j's test DataLoader. It shares no engine code with pftlab: it takes the federation, the global
weights and the per-epoch data order (the same seeded permutations, so both do the same work
and their metrics can be compared), and does everything else with plain torch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

Order = Callable[[int, int, int], np.ndarray]  # (client, epoch, n) -> permutation of range(n)


class EpochSampler(Sampler[int]):
    """Yields the epoch's permutation, then moves on to the next epoch."""

    def __init__(self, n: int, client: int, order: Order, first_epoch: int = 0):
        self.n, self.client, self.order, self.epoch = n, client, order, first_epoch

    def __iter__(self) -> Iterator[int]:
        perm = self.order(self.client, self.epoch, self.n)
        self.epoch += 1
        return iter(perm.tolist())

    def __len__(self) -> int:
        return self.n


def loader(x: np.ndarray, y: np.ndarray, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
    return DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y).long()), batch_size, sampler=sampler)


def train_phase(
    model: nn.Module, params: list[nn.Parameter], data: DataLoader, epochs: int, lr: float, opt_cfg
) -> None:
    opt = torch.optim.SGD(params, lr=lr, momentum=opt_cfg.momentum, weight_decay=opt_cfg.weight_decay)
    model.train()
    for _ in range(epochs):
        for x, y in data:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()


def personalize(
    global_model: nn.Module, client: Any, method: str, budget, params: dict[str, Any], order: Order
) -> nn.Module:
    """A new model object for the client: FT, LP or LP-FT on its training split."""
    model = copy.deepcopy(global_model)
    train = client.train
    data = loader(train.x, train.y, budget.batch_size, EpochSampler(len(train), client.client_id, order))
    head = list(model.head.parameters())
    if method == "ft":
        train_phase(model, list(model.parameters()), data, budget.epochs, params["lr"], budget)
    elif method == "lp":
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        train_phase(model, head, data, budget.epochs, params["lr"], budget)
    elif method == "lp-ft":
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        train_phase(model, head, data, params["lp_epochs"], params["lp_lr"], budget)
        for p in model.backbone.parameters():
            p.requires_grad_(True)
        train_phase(model, list(model.parameters()), data, budget.epochs - params["lp_epochs"], params["ft_lr"], budget)
    else:
        raise ValueError(f"the reference runs ft, lp and lp-ft, not {method!r}")
    return model


@torch.no_grad()
def evaluate(model: nn.Module, data: DataLoader) -> int:
    model.eval()
    return sum(int((model(x).argmax(1) == y).sum()) for x, y in data)


def run(
    global_model: nn.Module, fed: Any, methods: dict[str, dict[str, Any]], budget, order: Order
) -> dict[str, np.ndarray]:
    """correct[i, j] per method (and for the global model), the usual way."""
    tests = [loader(c.test.x, c.test.y, budget.batch_size) for c in fed.clients]
    n = len(fed.clients)
    out = {"global-model": np.tile([evaluate(global_model, t) for t in tests], (n, 1))}
    for method, params in methods.items():
        correct = np.zeros((n, n), dtype=np.int64)
        for i, client in enumerate(fed.clients):
            model = personalize(global_model, client, method, budget, params, order)
            for j, test in enumerate(tests):
                correct[i, j] = evaluate(model, test)
        out[method] = correct
    return out
