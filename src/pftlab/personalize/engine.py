"""Running a recipe method on clients: one client through the plain loop, or a chunk batched.

Both give each client's personalized weights from the same recipe, data order and budget; the
batched engine (`pftlab.training.batched`) runs a chunk of clients as one computation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pftlab.core.weights import Weights
from pftlab.data.dataset import Dataset
from pftlab.personalize.config import PersonalizeConfig
from pftlab.personalize.recipe import Method
from pftlab.training.batched import train_batch, unstack
from pftlab.training.loop import train


def personalize_client(
    model: nn.Module,
    start: Weights,
    method: Method,
    params: Any,
    budget: PersonalizeConfig,
    data: Dataset,
    seed: int,
    client: int,
    head: str = "head",
) -> Weights:
    """One client's personalized weights from `start`; `model` ends holding them."""
    if method.custom is not None:
        model.load_state_dict(start)
        method.custom(model, data, params, budget, seed, client, head)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    plan = method.checked_plan(params, budget)
    results = []
    for run in plan.runs:
        model.load_state_dict(start)
        train(model, run.phases, data, budget, seed, run.order, client, head)
        results.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    final = plan.finish(start, results, head)
    model.load_state_dict(final)
    return final


def supports(model: nn.Module, method: Method, params: Any, budget: PersonalizeConfig) -> bool:
    """True when every phase of the method's plan runs in the batched engine."""
    if method.custom is not None or budget.optimizer != "sgd" or any(True for _ in model.buffers()):
        return False
    phases = [p for run in method.checked_plan(params, budget).runs for p in run.phases]
    return all(p.solver == "sgd" and not p.sparsity and not p.freeze_norm for p in phases)


def personalize_batch(
    model: nn.Module,
    start: Weights,
    method: Method,
    params: Any,
    budget: PersonalizeConfig,
    data: Sequence[Dataset],
    clients: Sequence[int],
    seed: int,
    head: str = "head",
) -> tuple[list[Weights], list[float]]:
    """Every client's personalized weights from `start`, and its last-epoch loss (nan-free or not)."""
    plan = method.checked_plan(params, budget)
    results, losses = [], [0.0] * len(clients)
    for run in plan.runs:
        stacked, shared, run_losses = train_batch(
            model, start, run.phases, data, clients, budget, seed, run.order, head
        )
        ok = torch.ones(len(clients), dtype=torch.bool)
        for t in stacked.values():
            ok &= torch.isfinite(t).flatten(1).all(1).cpu()
        run_losses = [loss if good else math.nan for loss, good in zip(run_losses, ok.tolist(), strict=True)]
        results.append(unstack(stacked, shared, len(clients)))
        losses = [b if math.isfinite(a) else a for a, b in zip(losses, run_losses, strict=True)]  # nan sticks
    model.load_state_dict(start)
    return [plan.finish(start, [r[k] for r in results], head) for k in range(len(clients))], losses
