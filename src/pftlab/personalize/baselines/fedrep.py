"""FedRep (Collins et al. 2021): per round, fit the personal head on the frozen body, then train the body.

Each round a client first trains its own head for head_epochs with the global body fixed, then
the body for [federated] local_epochs with its head fixed; only the body is averaged.
"""

from __future__ import annotations

from functools import partial

from pydantic import Field
from torch import nn

from pftlab.core.schema import Strict
from pftlab.core.weights import Weights
from pftlab.data.dataset import Dataset
from pftlab.federated.algorithm import ORDER, Algorithm, ClientUpdate, State, local_train
from pftlab.federated.config import FederatedConfig
from pftlab.personalize.baselines.base import Baseline
from pftlab.personalize.baselines.fedper import server_update, split
from pftlab.training.phase import Phase


class Params(Strict):
    head_epochs: int = Field(10, ge=1, le=10_000, description="head epochs per round (the paper uses 10)")
    head_lr: float = Field(0.0, ge=0, le=100, description="0 = federated.lr")
    lr: float = Field(0.0, ge=0, le=100, description="the body epochs' learning rate; 0 = federated.lr")


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
    head_lr = params.head_lr or cfg.lr
    phases = [Phase("head", params.head_epochs, head_lr), Phase("body", cfg.local_epochs, params.lr or cfg.lr)]
    return split(local_train(model, start, data, phases, cfg, seed, f"{ORDER}/round{rnd}", client_id, head), head)


BASELINE = Baseline(
    "fedrep",
    "FedRep: per round, personal head epochs on the frozen body, then body epochs; only the body is averaged",
    Params,
    lambda p, cfg: Algorithm("fedrep", partial(local_update, p), server_update),
)
