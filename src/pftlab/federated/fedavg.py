"""FedAvg (McMahan et al. 2017): local SGD on the sampled clients, sample-weighted averaging."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pftlab.data.dataset import FederatedData
from pftlab.experiment.config import FederatedConfig
from pftlab.federated.sampling import participation_schedule
from pftlab.io import Weights
from pftlab.personalize.recipe import Phase
from pftlab.train import train
from pftlab.weights import weighted_average


def fedavg(
    model: nn.Module,
    fed: FederatedData,
    cfg: FederatedConfig,
    seed: int,
    on_round: Callable[[int, float], None] | None = None,
) -> Weights:
    """Train the global model; `model` is the one module object reused for every client."""
    global_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    local = [Phase("all", cfg.local_epochs, cfg.lr)]
    for rnd, chosen in enumerate(participation_schedule(fed.num_clients, cfg.clients_per_round, cfg.rounds, seed)):
        states, sizes, losses = [], [], []
        for cid in chosen:
            model.load_state_dict(global_weights)
            client = fed.clients[cid]
            losses.append(train(model, local, client.train, cfg, seed, f"fedavg/round{rnd}", int(cid)))
            states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            sizes.append(len(client.train))
        global_weights = weighted_average(states, sizes)
        if on_round is not None:
            on_round(rnd, sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes))
    model.load_state_dict(global_weights)
    return global_weights
