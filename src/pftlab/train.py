"""The one training loop: FedAvg's local steps and every personalization phase run through it.

Every caller gets the same data order for the same (seed, purpose, client, epoch), so methods
compared on one client see the same batches in the same epochs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pftlab.data.dataset import Dataset
from pftlab.experiment.config import OptimizerConfig
from pftlab.models.heads import features, head_module
from pftlab.personalize.recipe import Phase
from pftlab.seeding import numpy_rng


def make_optimizer(params: Iterable[nn.Parameter], lr: float, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)


def epoch_order(n: int, seed: int, purpose: str, client: int, epoch: int) -> torch.Tensor:
    return torch.from_numpy(numpy_rng(seed, purpose, client, epoch).permutation(n))


def train(
    model: nn.Module,
    phases: Sequence[Phase],
    data: Dataset,
    optim: OptimizerConfig,
    seed: int,
    purpose: str,
    client: int,
    head: str = "head",
) -> float:
    """Run the phases in place on `model`; return the mean training loss of the last epoch.

    A head-only phase trains the head on backbone features computed once (the backbone is
    frozen, so they cannot change): the cost of linear probing is one forward pass.
    """
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    epoch, last_loss = 0, math.nan
    for phase in phases:
        net, inputs = (head_module(model, head), features(model, head, x)) if phase.train == "head" else (model, x)
        net.train()
        opt = make_optimizer(net.parameters(), phase.lr, optim)
        for _ in range(phase.epochs):
            total = 0.0
            for idx in epoch_order(len(y), seed, purpose, client, epoch).split(optim.batch_size):
                loss = F.cross_entropy(net(inputs[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            last_loss = total / len(y)
            if not math.isfinite(last_loss):
                raise FloatingPointError(f"client {client}: training loss became {last_loss} in epoch {epoch}")
            epoch += 1
    return last_loss
