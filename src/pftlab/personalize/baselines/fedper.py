"""FedPer (Arivazhagan et al. 2019): the body is federated, each client keeps its own head.

Every round a client trains all its layers from the global body and its own head; only the body
goes to the server and is averaged, the head stays on the client.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial

from pydantic import Field
from torch import nn

from pftlab.core.schema import Strict
from pftlab.core.weights import Weights
from pftlab.data.dataset import Dataset
from pftlab.federated.algorithm import ORDER, Algorithm, ClientUpdate, State, average, local_train
from pftlab.federated.config import FederatedConfig
from pftlab.personalize.baselines.base import Baseline, head_keys
from pftlab.training.phase import Phase


class Params(Strict):
    """[federated] sets rounds and epochs; `lr` lets a search tune FedPer's learning rate like every
    other method's without moving the global stage's."""

    lr: float = Field(0.0, ge=0, le=100, description="learning rate of the clients' training; 0 = federated.lr")


def split(update: ClientUpdate, head: str) -> ClientUpdate:
    """Send the body, keep the head as the client's state."""
    heads = set(head_keys(update.weights, head))
    update.client_state = {k: v for k, v in update.weights.items() if k in heads}
    update.weights = {k: v for k, v in update.weights.items() if k not in heads}
    return update


def local_update(
    params: Params,
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
    start = {**global_weights, **client_state}
    phases = [Phase("all", cfg.local_epochs, params.lr or cfg.lr)]
    return split(local_train(model, start, data, phases, cfg, seed, f"{ORDER}/round{rnd}", client_id, head), head)


def server_update(
    global_weights: Weights,
    updates: Sequence[ClientUpdate],
    server_state: State,
    cfg: FederatedConfig,
    num_clients: int,
    params: Collection[str],
) -> tuple[Weights, State]:
    return average(global_weights, updates, cfg), server_state


BASELINE = Baseline(
    "fedper",
    "FedPer: federated body, personal heads trained jointly with it and never averaged",
    Params,
    lambda p, cfg: Algorithm("fedper", partial(local_update, p), server_update),
)
