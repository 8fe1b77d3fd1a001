"""LP-FT (Kumar et al. 2022): fit the head first, then fine-tune everything.

With a head already fitted to local data, the gradient reaching the features is small, so the
globally learned features move less than under plain FT.
"""

from typing import Protocol

from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.personalize.config import PersonalizeConfig
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


class Params(Strict):
    lp_epochs: int = Field(5, ge=0, le=10_000, description="epochs of the budget spent on LP; the rest is FT")
    lp_lr: float = Field(0.1, gt=0, le=100)
    ft_lr: float = Field(0.01, gt=0, le=100)


class _LpEpochs(Protocol):
    """The Params of an LP-FT variant: epochs of the budget spent on LP."""

    @property
    def lp_epochs(self) -> int: ...


def check_lp_epochs(p: _LpEpochs, budget: PersonalizeConfig) -> str | None:
    if p.lp_epochs > budget.epochs:
        return f"lp_epochs={p.lp_epochs} exceeds the budget personalize.epochs={budget.epochs}"
    return None


METHOD = Method(
    "lp-ft",
    "linear probing, then fine-tuning all parameters (same total epochs)",
    Params,
    lambda p, budget: single(Phase("head", p.lp_epochs, p.lp_lr), Phase("all", budget.epochs - p.lp_epochs, p.ft_lr)),
    check_lp_epochs,
)
