"""FedProx (Li et al. 2020): FedAvg whose local loss adds mu/2 ||w - w_global||^2.

The proximal term keeps heterogeneous clients' local models near the global one; mu = 0 is FedAvg.
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
    phases = [Phase("all", cfg.local_epochs, cfg.lr, proximal_mu=cfg.prox_mu)]
    return local_train(model, global_weights, data, phases, cfg, seed, f"{ORDER}/round{rnd}", client_id, head)


ALGORITHM = Algorithm("fedprox", local_update, fedavg.server_update)
