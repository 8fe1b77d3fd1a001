"""Soup FT: K fine-tuned copies (their own data orders, learning rates cycled from a list) averaged weight-wise.

Each ingredient gets the whole epoch budget, so a soup costs K times FT.
"""

from typing import Annotated

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.config import PersonalizeConfig
from pftlab.personalize.recipe import Method, Plan, Run, average
from pftlab.training.phase import Phase


class Params(Strict):
    ingredients: int = Field(3, ge=1, le=100)
    lrs: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        default=[0.005, 0.01, 0.02], min_length=1, max_length=100, description="learning rates in (0, 100], cycled"
    )


def plan(p: Params, budget: PersonalizeConfig) -> Plan:
    runs = tuple(
        Run((Phase("all", budget.epochs, p.lrs[k % len(p.lrs)]),), order="personalize" if k == 0 else f"soup{k}")
        for k in range(p.ingredients)
    )
    return Plan(runs, average)


METHOD = Method("soup-ft", "average of K fine-tuned copies (different data orders and lrs)", Params, plan)
