"""The client / server contract of every global-stage algorithm, and the pieces they share.

Everything that crosses between a client and the server is a dict of tensors or a number, so an
in-process loop and Flower's ClientApp / ServerApp call exactly the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict, Unpack, cast

import torch
from torch import nn

from pftlab.core.seeding import numpy_rng
from pftlab.core.weights import Weights, all_finite
from pftlab.data.dataset import Dataset
from pftlab.federated.config import FederatedConfig
from pftlab.training.loop import train
from pftlab.training.phase import Phase

State = dict[str, torch.Tensor]

# Every global-stage algorithm draws FedAvg's data order, so two algorithms differ only in the algorithm.
ORDER = "fedavg"


@dataclass
class ClientUpdate:
    """What one client returns after a round.

    weights: the keys it shares (the whole state dict, or only the body for FedPer / FedRep).
    extra: algorithm tensors for the server (SCAFFOLD: the change of the client's control variate).
    client_state: kept by the client for its next round, never sent (SCAFFOLD: its control variate).
    """

    weights: Weights
    num_examples: int
    loss: float
    extra: State = field(default_factory=dict)
    client_state: State = field(default_factory=dict)


class LocalUpdate(Protocol):
    def __call__(
        self,
        model: nn.Module,
        global_weights: Weights,
        payload: State,
        data: Dataset,
        cfg: FederatedConfig,
        seed: int,
        rnd: int,
        client_id: int,
        client_state: State,
        head: str = "head",
    ) -> ClientUpdate: ...


class ServerUpdate(Protocol):
    def __call__(
        self,
        global_weights: Weights,
        updates: Sequence[ClientUpdate],
        server_state: State,
        cfg: FederatedConfig,
        num_clients: int,
        params: Collection[str],
    ) -> tuple[Weights, State]: ...


def no_payload(server_state: State) -> State:
    return {}


@dataclass(frozen=True)
class Algorithm:
    """local_update runs on a client; server_update on the accepted updates of a round;
    payload(server_state) is what the server sends beside the global weights (SCAFFOLD: c)."""

    name: str
    local_update: LocalUpdate
    server_update: ServerUpdate
    payload: Callable[[State], State] = no_payload


def snapshot(model: nn.Module) -> Weights:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class TrainHooks(TypedDict, total=False):
    """The keyword arguments `local_train` passes on to the training loop (see `pftlab.training.loop.train`)."""

    grad_correction: Weights
    prox_to: Weights


def local_train(
    model: nn.Module,
    start: Weights,
    data: Dataset,
    phases: list[Phase],
    cfg: FederatedConfig,
    seed: int,
    purpose: str,
    client_id: int,
    head: str = "head",
    **hooks: Unpack[TrainHooks],
) -> ClientUpdate:
    """Train from `start` with the one training loop; a diverging client returns loss NaN, not an exception."""
    model.load_state_dict(start)
    try:
        loss = train(model, phases, data, cfg, seed, purpose, client_id, head, **hooks)
    except FloatingPointError:
        loss = math.nan
    return ClientUpdate(snapshot(model), len(data), loss)


def is_finite(update: ClientUpdate) -> bool:
    """A client update the server may use: finite loss, weights, extras and state."""
    return (
        math.isfinite(update.loss)
        and all_finite(update.weights)
        and all_finite(update.extra)
        and all_finite(update.client_state)
    )


def dropped(seed: int, rnd: int, client_id: int, probability: float) -> bool:
    """Whether a sampled client drops out of a round: drawn from (seed, round, client) only."""
    if probability <= 0:
        return False
    return bool(numpy_rng(seed, "dropout", rnd, client_id).random() < probability)


def average(global_weights: Weights, updates: Sequence[ClientUpdate], cfg: FederatedConfig | None = None) -> Weights:
    """The shared keys combined as cfg.aggregate says (no cfg: the sample-weighted mean).

    "mean" weighs each client by its number of training samples; "median" and "trimmed-mean"
    (see `robust_center`) are unweighted, since a client's sample count is its own claim and one
    client claiming many samples would otherwise outvote the rest. Keys nobody sent, or nobody
    changed, stay bit-identical; integer buffers (BatchNorm's step counter) are taken from the
    first update.
    """
    how = "mean" if cfg is None else cfg.aggregate
    total = float(sum(u.num_examples for u in updates))
    out = dict(global_weights)
    for key in updates[0].weights:
        values = [u.weights[key] for u in updates]
        if not values[0].is_floating_point():
            out[key] = values[0].clone()
        elif all(torch.equal(v, global_weights[key]) for v in values):
            out[key] = global_weights[key]
        elif how == "mean":
            # updates is not empty, so the sum is a Tensor (never sum's start value 0)
            out[key] = cast(torch.Tensor, sum(u.num_examples / total * v for u, v in zip(updates, values, strict=True)))
        else:
            out[key] = robust_center(values, how, 0.0 if cfg is None else cfg.trim)
    return out


def trimmed_count(n: int, aggregate: str, trim: float) -> int:
    """How many of n values a robust aggregate drops from each end of every coordinate.

    median: all but the middle one (odd n) or two (even n); trimmed-mean: ceil(trim n), so any
    trim > 0 drops at least one from each end, capped so that the median's one or two remain;
    mean: none.
    """
    most = (n - 1) // 2
    if aggregate == "median":
        return most
    if aggregate == "trimmed-mean":
        return min(math.ceil(trim * n - 1e-9), most)
    return 0


def robust_center(values: Sequence[torch.Tensor], aggregate: str, trim: float) -> torch.Tensor:
    """Coordinate-wise median ("median") or trimmed mean ("trimmed-mean") of same-shape tensors, unweighted.

    The median of an even count is the mean of the two middle values.
    """
    k = trimmed_count(len(values), aggregate, trim)
    stacked = torch.stack(list(values))
    if k:
        stacked = stacked.sort(dim=0).values[k : len(values) - k]
    return stacked.mean(dim=0)


def server_lr(cfg: FederatedConfig) -> float:
    if cfg.server_lr:
        return cfg.server_lr
    return 0.01 if cfg.algorithm == "fedadam" else 1.0


def mean_loss(updates: Sequence[ClientUpdate]) -> float:
    total = sum(u.num_examples for u in updates)
    return sum(u.loss * u.num_examples for u in updates) / total if total else math.nan


def zeros_like(weights: Weights, keys: Collection[str]) -> State:
    return {k: torch.zeros_like(weights[k]) for k in keys}
