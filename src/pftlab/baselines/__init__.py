"""Process-integrated personalized FL baselines: personalization happens during federated training.

Each file holds one baseline (its Params and its Algorithm); `run_baseline` trains the federation
and returns every client's personalized weights, to be scored with the same cross-client matrix
as the post-hoc methods.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pftlab.baselines import ditto, fedper, fedrep
from pftlab.baselines.base import Baseline, train_baseline
from pftlab.data.dataset import FederatedData
from pftlab.experiment.config import Config
from pftlab.federated.rounds import StageStats
from pftlab.weights import Weights

BASELINES: dict[str, Baseline] = {b.BASELINE.name: b.BASELINE for b in (fedper, fedrep, ditto)}

__all__ = ["BASELINES", "Baseline", "run_baseline"]


def run_baseline(
    name: str,
    model: nn.Module,
    fed: FederatedData,
    cfg: Config,
    head: str = "head",
    on_round: Callable[[int, float], None] | None = None,
) -> tuple[list[tuple[int, Weights]], StageStats]:
    """[(client_id, personalized weights)] for every client, and the rounds' counts.

    Parameters come from cfg's [method.<name>] table; training follows [federated] (its
    `algorithm` key is ignored) from `model`'s current weights: pass a freshly built model.
    """
    spec = BASELINES[name]
    return train_baseline(spec, model, fed, cfg, cfg.method_params(name), head, on_round)
