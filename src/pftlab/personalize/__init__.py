"""Post-hoc personalization methods, each a small recipe file registered here."""

from __future__ import annotations

from typing import Any

from torch import nn

from pftlab.data.dataset import Dataset
from pftlab.experiment.config import PersonalizeConfig
from pftlab.personalize import flood, ft, lp, lpft, lpft_kumar, lss, proximal, soup, sparse, surgical, wise
from pftlab.personalize.recipe import Method, Phase, Weights

METHODS: dict[str, Method] = {
    m.METHOD.name: m.METHOD for m in (ft, lp, lpft, proximal, sparse, soup, lss, wise, surgical, lpft_kumar, flood)
}

__all__ = ["METHODS", "Method", "Phase", "personalize_client"]


def personalize_client(
    model: nn.Module,
    start: Weights,
    method: Method,
    params: Any,
    budget: PersonalizeConfig,
    data: Dataset,
    seed: int,
    client: int,
    head: str = "head",
) -> Weights:
    """One client's personalized weights from `start`; `model` ends holding them."""
    from pftlab.train import train

    if method.custom is not None:
        model.load_state_dict(start)
        method.custom(model, data, params, budget, seed, client, head)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    plan = method.checked_plan(params, budget)
    results = []
    for run in plan.runs:
        model.load_state_dict(start)
        train(model, run.phases, data, budget, seed, run.order, client, head)
        results.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    final = plan.combine(start, results)
    model.load_state_dict(final)
    return final
