"""What each node and the server compute, as plain functions over pftlab data (no Flower here).

The global stage is not here: the ClientApp calls the algorithm's own `local_update` and the
ServerApp `pftlab.federated.server_round`, the functions the in-process loop calls, in the same
order, so a Flower run and an in-process run of one config and seed give the same weights.
Personalization calls the runner's per-client choice; scoring mirrors its evaluation for one client.
The cross-site choice is the runner's too, split over the messages: each node trains and scores
its grid points on its own validation split, every node scores the others' candidates on its
share of the validation pool, and the server keeps each client's best point by each rule.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from pftlab.core.errors import UserError
from pftlab.core.weights import Weights
from pftlab.data.dataset import ClientData, Dataset
from pftlab.evaluate.choice import ValidationPool
from pftlab.evaluate.matrix import EvalPool, accuracy, correct_row_from_features, pool_features
from pftlab.experiment.config import Config, from_dict
from pftlab.experiment.runner import choose, personalize_chunk
from pftlab.models import head_module
from pftlab.personalize import METHODS

GLOBAL_MODEL = "global-model"
T = TypeVar("T")


def clone(weights: dict[str, torch.Tensor]) -> Weights:
    return {k: v.detach().clone() for k, v in weights.items()}


def check_methods(cfg: Config) -> None:
    """Flower personalizes with the post-hoc methods, each client's grid point chosen by every
    configured rule (the cross-site rule with a validation round); process-integrated baselines
    run in-process only."""
    tuned = [m for m in cfg.personalize.methods if getattr(METHODS[m], "follows", "") and len(cfg.search_grid(m)) > 1]
    if tuned:  # in-process they train at the point the followed method chose; nodes would choose their own
        raise UserError(
            f"personalize.methods {tuned}: a control of a method with a grid cannot run on Flower yet; "
            "run it with that method at one setting (no [search] grid), or in-process"
        )
    other = [m for m in cfg.personalize.methods if METHODS[m].integrated]
    if other:
        allowed = ", ".join(m for m, spec in METHODS.items() if not spec.integrated)
        raise UserError(f"personalize.methods {other} cannot run on Flower yet; allowed there: {allowed}")


def personalize(
    model: nn.Module, global_weights: Weights, client: ClientData, cfg: Config, method: str, head: str = "head"
) -> tuple[Weights, dict[str, Any] | None]:
    """One client's personalized weights for `method`, and the grid point it chose (None without a grid).

    The runner's own choice (`pftlab.experiment.runner.choose`): same engine, same selection on the
    client's validation split. A client whose training diverges fails the message.
    """
    candidates = cfg.search_grid(method)
    (picks,) = choose(model, global_weights, method, candidates, cfg, [client], head)
    pick = picks[cfg.choice.rules[0]]  # without cross-site scoring every rule keeps the same point
    if isinstance(pick.weights, str):
        raise FloatingPointError(pick.weights)
    if len(candidates) == 1:
        return pick.weights, None
    return pick.weights, {rule: picks[rule].record(client.client_id, rule) for rule in cfg.choice.rules}


def cross_site(cfg: Config, method: str) -> bool:
    """Whether the method's choice needs the other clients' validation scores (else a node chooses alone)."""
    return "cross-site" in cfg.choice.rules and cfg.choice.weight > 0 and len(cfg.search_grid(method)) > 1


def candidates(
    model: nn.Module, global_weights: Weights, client: ClientData, cfg: Config, method: str, head: str = "head"
) -> list[tuple[Weights | str, float]]:
    """Every grid point's weights (or why it failed) and accuracy on the client's own validation
    split (NaN when it failed): the runner's choice trains and scores each point the same way."""
    out: list[tuple[Weights | str, float]] = []
    for params in cfg.search_grid(method):
        (w,) = personalize_chunk(model, global_weights, method, params, cfg, [client], head)
        own = math.nan
        if not isinstance(w, str):
            model.load_state_dict(w)
            own = accuracy(model, client.val)
        out.append((w, own))
    if all(isinstance(w, str) for w, _ in out):
        raise FloatingPointError(f"{method}: every grid point failed: {out[0][0]}")
    return out


def pool_accuracy(model: nn.Module, weights: Weights, val: Dataset, picks: list[int]) -> float:
    """A model's accuracy (%) on this node's share `picks` of the validation pool, computed as the
    in-process pool computes it."""
    model.load_state_dict(weights)
    return float(ValidationPool.gather([val], [np.array(picks, dtype=np.int64)]).accuracies(model)[0])


def own_pool(test: Dataset) -> EvalPool:
    """A node's own test split as a one-client evaluation pool."""
    x, y = torch.from_numpy(test.x), torch.from_numpy(test.y)
    return EvalPool(x, y, torch.zeros(len(y), dtype=torch.int64), np.array([len(y)]))


def hits(model: nn.Module, weights: Weights, pool: EvalPool, head: str = "head") -> int:
    """Test samples of this node that a model with `weights` gets right (features, then head, as in-process)."""
    model.load_state_dict(weights)
    return int(correct_row_from_features(head_module(model, head), pool, pool_features(model, pool, head))[0])


def config_json(cfg: Config) -> str:
    """The resolved config as JSON: what the ServerApp sends with every message (TOML has no null)."""
    return json.dumps(cfg.resolved(), sort_keys=True)


def config_from_json(text: str) -> Config:
    return from_dict(json.loads(text))


# Reading messages: a record, or a record's field, is typed as the union of all Flower allows; these check it is what
# the ClientApp and ServerApp put there.


def of_type(value: object, kind: type[T]) -> T:
    """`value` (a message's record), checked to be the `kind` the protocol puts there."""
    if not isinstance(value, kind):
        raise TypeError(f"expected a {kind.__name__} in the message, got a {type(value).__name__}")
    return value


def scalar(value: object) -> int | float | str:
    """A record's field that holds one number (or its text), as int() and float() take it."""
    if not isinstance(value, int | float | str):
        raise TypeError(f"expected a number in the message, got a {type(value).__name__}")
    return value
