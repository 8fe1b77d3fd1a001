"""FedAvg (McMahan et al. 2017): local SGD on the sampled clients, sample-weighted averaging."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from torch import nn

from pftlab.data.dataset import Dataset, FederatedData
from pftlab.experiment.config import FederatedConfig
from pftlab.federated.algorithm import ORDER, Algorithm, ClientUpdate, State, average, local_train
from pftlab.personalize.recipe import Phase
from pftlab.weights import Weights


def local_update(
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
) -> ClientUpdate:
    phases = [Phase("all", cfg.local_epochs, cfg.lr)]
    return local_train(model, global_weights, data, phases, cfg, seed, f"{ORDER}/round{rnd}", client_id, head)


def server_update(
    global_weights: Weights,
    updates: Sequence[ClientUpdate],
    server_state: State,
    cfg: FederatedConfig,
    num_clients: int,
    params: Collection[str],
) -> tuple[Weights, State]:
    return average(global_weights, updates), server_state


ALGORITHM = Algorithm("fedavg", local_update, server_update)


def fedavg(
    model: nn.Module,
    fed: FederatedData,
    cfg: FederatedConfig,
    seed: int,
    on_round: Callable[[int, float], None] | None = None,
) -> Weights:
    """Train the global model with cfg.algorithm (FedAvg by default); `model` ends holding it."""
    from pftlab.federated.rounds import run_global_stage

    weights, _ = run_global_stage(model, fed, cfg, seed, on_round)
    return weights
