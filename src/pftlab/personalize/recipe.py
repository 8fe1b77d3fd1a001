"""A personalization method as data: phases of the one shared training loop.

A phase answers which parameters train, for how many epochs, at which learning rate. Later
methods add answers (extra loss terms, gradient masks, what to do with the weights after);
the loop in pftlab.train stays one loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pftlab.experiment.config import PersonalizeConfig, Strict

Trainable = Literal["all", "head"]


@dataclass(frozen=True)
class Phase:
    train: Trainable
    epochs: int
    lr: float


def no_check(params: Any, budget: PersonalizeConfig) -> str | None:
    return None


@dataclass(frozen=True)
class Method:
    """A named recipe: its hyper-parameters (a Strict model) and the phases they give."""

    name: str
    summary: str
    Params: type[Strict]
    phases: Callable[[Any, PersonalizeConfig], list[Phase]]
    check: Callable[[Any, PersonalizeConfig], str | None] = no_check

    def recipe(self, params: Any, budget: PersonalizeConfig) -> list[Phase]:
        """The phases that run (empty ones dropped); their epochs add up to the budget."""
        phases = self.phases(params, budget)
        if any(p.epochs < 0 for p in phases) or sum(p.epochs for p in phases) != budget.epochs:
            raise ValueError(f"{self.name}: phases {phases} do not fill the budget of {budget.epochs} epochs")
        return [p for p in phases if p.epochs > 0]

    def backbone_frozen(self, params: Any, budget: PersonalizeConfig) -> bool:
        """True when no phase trains the backbone: its features can be computed once."""
        return all(p.train == "head" for p in self.recipe(params, budget))
