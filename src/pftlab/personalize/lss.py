"""LSS FT: Local Superior Soups (Chen et al., NeurIPS 2024), post-hoc.

A pool of models is grown one member at a time. Member 0 starts at the global weights; each
later member starts at the mean of the pool and is trained, with the earlier members fixed,
through random interpolations of the whole pool: at every step the weights Dirichlet(1)-mix
all members, the loss is taken at the mixture, and only the new member moves. Two terms shape
it: affinity, a * ||theta_new - theta_global||^2, keeps it near the start; diversity,
-d * mean_j ||theta_new - theta_j||^2, pushes it away from the others. The result is the pool's
mean. Our choices (the LSS paper's code measures diversity as the pool simplex's volume; we use
the mean squared distance, which has the same direction and no determinant), and the budget:
the epochs are split over the members, the first taking any remainder, so LSS costs what FT
costs. The diversity weight must stay below the affinity weight, or the loss is unbounded.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call

from pftlab.core.compute import autocast, on_device
from pftlab.core.schema import Strict
from pftlab.core.seeding import torch_generator
from pftlab.data.dataset import Dataset
from pftlab.personalize.config import PersonalizeConfig
from pftlab.personalize.recipe import Method, single
from pftlab.training.loop import epoch_order, make_optimizer
from pftlab.training.phase import Phase


class Params(Strict):
    lr: float = Field(0.01, gt=0, le=100)
    pool: int = Field(3, ge=1, le=50, description="members in the soup")
    affinity: float = Field(0.1, ge=0, le=1e6)
    diversity: float = Field(0.05, ge=0, le=1e6)


def _check(p: Params, budget: PersonalizeConfig) -> str | None:
    if p.pool > budget.epochs:
        return f"pool={p.pool} needs at least one epoch per member; personalize.epochs={budget.epochs}"
    if p.pool > 1 and p.diversity >= p.affinity:
        return f"diversity={p.diversity} must be below affinity={p.affinity}, or the loss has no minimum"
    return None


def _sq_dist(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
    # the models have parameters, so the sum is a Tensor (never sum's start value 0)
    return cast(torch.Tensor, sum(((a[n] - b[n]) ** 2).sum() for n in a))


def _mean(pool: list[dict[str, torch.Tensor]], name: str) -> torch.Tensor:
    """The pool's mean of tensor `name`; the pool is not empty, so the sum is a Tensor (never sum's start value 0)."""
    return cast(torch.Tensor, sum(m[name] for m in pool)) / len(pool)


def member_epochs(epochs: int, pool: int) -> list[int]:
    each = epochs // pool
    return [epochs - each * (pool - 1)] + [each] * (pool - 1)


def personalize_lss(
    model: nn.Module, data: Dataset, p: Params, budget: PersonalizeConfig, seed: int, client: int, head: str
) -> None:
    x, y = on_device(torch.from_numpy(data.x)), on_device(torch.from_numpy(data.y))
    start = {n: q.detach().clone() for n, q in model.named_parameters()}
    buffers = dict(model.named_buffers())
    gen = torch_generator(seed, "lss", client)
    pool: list[dict[str, torch.Tensor]] = []
    epoch = 0
    model.train()
    for n_epochs in member_epochs(budget.epochs, p.pool):
        init = start if not pool else {n: _mean(pool, n) for n in start}
        member = {n: v.clone().requires_grad_(True) for n, v in init.items()}
        opt = make_optimizer(member.values(), p.lr, budget)
        for _ in range(n_epochs):
            for idx in epoch_order(len(y), seed, "personalize", client, epoch).split(budget.batch_size):  # type: ignore[no-untyped-call]  # torch leaves Tensor.split unannotated
                w = on_device(-torch.rand(len(pool) + 1, generator=gen).log())  # drawn on the CPU: same on any device
                w = w / w.sum()
                mixed = {n: w[-1] * member[n] + sum(w[j] * m[n] for j, m in enumerate(pool)) for n in member}
                idx = on_device(idx)
                with autocast():
                    loss = F.cross_entropy(functional_call(model, {**mixed, **buffers}, (x[idx],)), y[idx])
                loss = loss + p.affinity * _sq_dist(member, start)
                if pool:
                    loss = loss - p.diversity * sum(_sq_dist(member, m) for m in pool) / len(pool)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
                opt.step()
            epoch += 1
        pool.append({n: v.detach() for n, v in member.items()})
    with torch.no_grad():
        for n, q in model.named_parameters():
            q.copy_(_mean(pool, n))


METHOD = Method(
    "lss-ft",
    "Local Superior Soups: a pool trained through random interpolations, affinity + diversity terms",
    Params,
    lambda p, budget: single(Phase("all", budget.epochs, p.lr)),  # the budget it charges; runs custom
    _check,
    custom=personalize_lss,
)
