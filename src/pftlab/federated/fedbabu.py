"""FedBABU (Oh et al. 2022): FedAvg in which the head never trains, only the body.

The head stays at its (random) initialisation during the whole global stage, so the body learns
features for a fixed classifier; the post-hoc methods then fit the head per client.
"""

from __future__ import annotations

from torch import nn

from pftlab.core.weights import Weights
from pftlab.data.dataset import Dataset
from pftlab.federated import fedavg
from pftlab.federated.algorithm import ORDER, Algorithm, ClientUpdate, State, local_train
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
    phases = [Phase("body", cfg.local_epochs, cfg.lr)]
    return local_train(model, global_weights, data, phases, cfg, seed, f"{ORDER}/round{rnd}", client_id, head)


# The head comes back unchanged from every client, so the average keeps it bit-identical.
ALGORITHM = Algorithm("fedbabu", local_update, fedavg.server_update)
