"""FedAvg (McMahan et al. 2017): local SGD on the sampled clients, sample-weighted averaging.

With `federated.aggregate` = "median" or "trimmed-mean" the average is that robust aggregate instead.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from torch import nn

from pftlab.core.weights import Weights
from pftlab.data.dataset import Dataset
from pftlab.federated.algorithm import ORDER, Algorithm, ClientUpdate, State, average, local_train
from pftlab.federated.config import FederatedConfig
from pftlab.training.phase import Phase


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
    return average(global_weights, updates, cfg), server_state


ALGORITHM = Algorithm("fedavg", local_update, server_update)
