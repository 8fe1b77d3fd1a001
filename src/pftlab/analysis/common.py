"""What every analysis starts from: the federation, the (cached) global model and the test pool."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from rich.progress import Progress
from torch import nn

from pftlab.core.errors import UserError
from pftlab.core.schema import validation_message
from pftlab.data.benchmarks import build_federation
from pftlab.data.dataset import FederatedData
from pftlab.evaluate.matrix import EvalPool, correct_row
from pftlab.experiment.checkpoint import global_model
from pftlab.experiment.config import Config
from pftlab.experiment.runner import set_threads
from pftlab.models import build_model
from pftlab.personalize import recipe
from pftlab.training.phase import Phase


@dataclass
class Setup:
    cfg: Config
    fed: FederatedData
    model: nn.Module
    weights: dict[str, torch.Tensor]
    pool: EvalPool


def analysis_phases(cfg: Config, method: str, overrides: Mapping[str, Any], what: str) -> list[Phase]:
    """The phases an analysis trains for `method`: its [method.X] table with `overrides`, under the shared budget.

    Every problem (a parameter out of range, a plan that cannot fill personalize.epochs) is a UserError naming
    the analysis, so it is refused by `--check` and before any data is decoded or any model is trained.
    """
    spec = recipe(method)
    try:
        params = spec.Params.model_validate({**cfg.method.get(method, {}), **overrides})
    except ValidationError as err:
        raise UserError(f"{what}: {validation_message(err, spec.Params, f'method.{method}.')}") from None
    problem = spec.check(params, cfg.personalize)
    if problem:
        raise UserError(f"{what}: method.{method}: {problem}")
    try:
        return spec.recipe(params, cfg.personalize)
    except ValueError as err:  # a plan that does not fill the epoch budget, or has several runs
        raise UserError(f"{what}: method.{method}: {err}") from None


def diverged(what: str, failed: list[str], total: int, progress: Progress | None = None) -> None:
    """Say which clients diverged (left out of the means); if all `total` did, the analysis is refused."""
    if not failed:
        return
    if len(failed) == total:
        raise UserError(
            f"analysis {what}: training diverged on every client ({failed[0]}); "
            "lower the learning rate (personalize.* or the [method.X] table)"
        )
    line = f"warning: analysis {what}: {len(failed)} of {total} clients diverged and are left out, e.g. {failed[0]}"
    if progress is not None:
        progress.console.print(line, markup=False, highlight=False)
    else:
        print(line, file=sys.stderr)


def setup(cfg: Config) -> Setup:
    set_threads(cfg.runtime.threads)
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights, _, _ = global_model(model, fed, cfg)
    return Setup(cfg, fed, model, weights, EvalPool.of(fed))


def local_and_global(model: nn.Module, pool: EvalPool, client: int) -> tuple[float, float]:
    """Accuracy (%) on the client's own test set and pooled over every other client's."""
    hits, sizes = correct_row(model, pool), pool.sizes
    local = 100.0 * hits[client] / sizes[client]
    return local, 100.0 * (hits.sum() - hits[client]) / (sizes.sum() - sizes[client])


def mean_rows(rows: list[dict[str, Any]], keys: tuple[str, ...], by: tuple[str, ...]) -> list[dict[str, Any]]:
    """Average `keys` over rows that share the values of `by` (clients averaged out), keeping first-seen order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r)
    return [
        {**dict(zip(by, key, strict=True)), **{k: round(float(np.mean([r[k] for r in rs])), 4) for k in keys}}
        for key, rs in groups.items()
    ]
