"""What every process-integrated baseline shares: a registry entry and the run over the federation.

A baseline is an `Algorithm` (pftlab.federated) whose client state holds the personal part: a
head (FedPer, FedRep) or a whole model (Ditto). The shared part is trained by the same rounds
loop as the global stage; each client's personalized weights are the final global weights with
its client state laid over them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from pftlab.core.schema import Strict
from pftlab.core.weights import Weights
from pftlab.data.dataset import FederatedData
from pftlab.federated.algorithm import Algorithm
from pftlab.federated.config import FederatedConfig
from pftlab.federated.rounds import StageStats, run_rounds


@dataclass(frozen=True)
class Baseline:
    name: str
    summary: str
    Params: type[Strict]
    algorithm: Callable[[Any, FederatedConfig], Algorithm]  # (params, cfg.federated) -> the algorithm

    @property
    def integrated(self) -> bool:
        """True: it personalizes during its own federated training instead of after the global stage."""
        return True

    def check(self, params: Any, budget: Any) -> str | None:
        """Problems the Params alone cannot see (none: [federated] sets the budget)."""
        return None


def head_keys(weights: Weights, head: str) -> list[str]:
    return [k for k in weights if k.startswith(head + ".")]


def train_baseline(
    spec: Baseline,
    model: nn.Module,
    fed: FederatedData,
    cfg: FederatedConfig,
    seed: int,
    params: Any,
    head: str = "head",
    on_round: Callable[[int, float], None] | None = None,
) -> tuple[list[tuple[int, Weights]], StageStats]:
    """Each client's personalized weights, in client order, and the rounds' counts.

    Trains from `model`'s current weights (pass a freshly built model) for cfg's rounds,
    sampling, local epochs, learning rate and dropout; `model` ends holding the shared weights.
    A client that never took part keeps the shared weights.
    """
    algorithm = spec.algorithm(params, cfg)
    weights, states, stats = run_rounds(model, fed, algorithm, cfg, seed, head, on_round)
    personal = [(c.client_id, {**weights, **states.get(i, {})}) for i, c in enumerate(fed.clients)]
    return personal, stats
