"""Ditto (Li et al. 2021): FedAvg for the global model plus a personal model per client pulled toward it.

Each round a sampled client runs FedAvg's local update, and separately trains its personal model
v (kept on the client) on F_k(v) + lam/2 ||v - w_global||^2. Large lam keeps v near the global
model, lam = 0 is local training. With momentum SGD the pull is stable while lr * lam < 2 (1 + momentum).
"""

from __future__ import annotations

import math
from functools import partial

from pydantic import Field
from torch import nn

from pftlab.core.schema import Strict
from pftlab.core.weights import Weights
from pftlab.data.dataset import Dataset
from pftlab.federated import fedavg
from pftlab.federated.algorithm import Algorithm, ClientUpdate, State, local_train
from pftlab.federated.config import FederatedConfig
from pftlab.personalize.baselines.base import Baseline
from pftlab.training.phase import Phase


class Params(Strict):
    lam: float = Field(0.1, ge=0, le=1e4, description="pull of the personal model toward the global one")
    personal_epochs: int = Field(1, ge=1, le=10_000, description="epochs on the personal model per round")
    personal_lr: float = Field(0.0, ge=0, le=100, description="0 = federated.lr")


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
    personal_start = client_state or global_weights
    lr = params.personal_lr or cfg.lr
    phases = [Phase("all", params.personal_epochs, lr, proximal_mu=params.lam)]
    anchor = {n: global_weights[n] for n, _ in model.named_parameters()}
    personal = local_train(
        model, personal_start, data, phases, cfg, seed, f"ditto/round{rnd}", client_id, head, prox_to=anchor
    )
    update = fedavg.local_update(model, global_weights, payload, data, cfg, seed, rnd, client_id, {}, head)
    if math.isnan(personal.loss):  # the whole update is rejected
        update.loss = personal.loss
    update.client_state = personal.weights
    return update


BASELINE = Baseline(
    "ditto",
    "Ditto: FedAvg plus a personal model per client trained toward the global one with strength lam",
    Params,
    lambda p, cfg: Algorithm("ditto", partial(local_update, p), fedavg.server_update),
)
