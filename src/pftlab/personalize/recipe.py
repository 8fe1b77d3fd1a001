"""A personalization method as data: runs of the one shared training loop, then a combine step.

A phase answers which parameters train, for how many epochs, at which learning rate, with
which extra loss terms (proximal, flooding), which weights are masked (sparse) and how (SGD or
L-BFGS). A plan is one or more runs from the global weights (a soup has several) and what to do
with their results (keep, average, interpolate with the global weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pftlab.core.schema import Strict
from pftlab.core.weights import Weights, weighted_average
from pftlab.personalize.config import PersonalizeConfig
from pftlab.training.phase import Phase

Combine = Callable[[Weights, list[Weights]], Weights]


@dataclass(frozen=True)
class Run:
    phases: tuple[Phase, ...]
    order: str = "personalize"  # data-order key: runs sharing it see the same batches


def keep_last(start: Weights, results: list[Weights]) -> Weights:
    return results[-1]


def average(start: Weights, results: list[Weights]) -> Weights:
    """Weight-wise mean of the runs (a uniform soup)."""
    return weighted_average(results, [1.0] * len(results))


def interpolate(alpha: float) -> Combine:
    """(1 - alpha) * start + alpha * result: WiSE-FT between the global and the fine-tuned model."""

    def combine(start: Weights, results: list[Weights]) -> Weights:
        end = results[-1]
        return {k: (1 - alpha) * start[k] + alpha * end[k] if end[k].is_floating_point() else end[k] for k in end}

    return combine


@dataclass(frozen=True)
class Plan:
    """`keep_global` puts the start's (global) head or body back after `combine`: the head-swap
    controls that split a change of global accuracy into the head's part and the features' part."""

    runs: tuple[Run, ...]
    combine: Combine = keep_last
    keep_global: Literal["", "head", "body"] = ""

    def finish(self, start: Weights, results: list[Weights], head: str) -> Weights:
        """The combined weights, with the global head or body put back when the plan says so."""
        out = self.combine(start, results)
        if not self.keep_global:
            return out
        in_head = [k.startswith(head + ".") for k in out]
        if not any(in_head):
            raise ValueError(f"no weights under the head {head!r}: cannot keep the global {self.keep_global}")
        keep_head = self.keep_global == "head"
        return {k: start[k] if h == keep_head else v for (k, v), h in zip(out.items(), in_head, strict=True)}


def single(*phases: Phase) -> Plan:
    return Plan((Run(tuple(phases)),))


def no_check(params: Any, budget: PersonalizeConfig) -> str | None:
    return None


@dataclass(frozen=True)
class Method:
    """A named method: its hyper-parameters (a Strict model) and the plan they give.

    `custom`, when set, replaces the plan machinery for methods that are not runs of the shared
    loop (LSS trains a pool of models through their interpolations). `follows` names the method
    whose parameters this one runs at (a control of it): it has no table or grid of its own.
    """

    name: str
    summary: str
    Params: type[Strict]
    plan: Callable[[Any, PersonalizeConfig], Plan]
    check: Callable[[Any, PersonalizeConfig], str | None] = no_check
    custom: Callable[..., None] | None = field(default=None)
    follows: str = ""

    @property
    def integrated(self) -> bool:
        """False: it personalizes each client after the global stage, from the global weights."""
        return False

    def checked_plan(self, params: Any, budget: PersonalizeConfig) -> Plan:
        """The plan with empty phases dropped; every run must fill the epoch budget exactly."""
        plan = self.plan(params, budget)
        runs = []
        for run in plan.runs:
            if any(p.epochs < 0 for p in run.phases) or sum(p.epochs for p in run.phases) != budget.epochs:
                raise ValueError(f"{self.name}: phases {run.phases} do not fill the budget of {budget.epochs} epochs")
            runs.append(Run(tuple(p for p in run.phases if p.epochs > 0), run.order))
        return Plan(tuple(runs), plan.combine, plan.keep_global)

    def recipe(self, params: Any, budget: PersonalizeConfig) -> list[Phase]:
        """The phases of a single-run method."""
        (run,) = self.checked_plan(params, budget).runs
        return list(run.phases)

    def backbone_frozen(self, params: Any, budget: PersonalizeConfig) -> bool:
        """True when no phase trains the backbone: its features can be computed once."""
        if self.custom is not None:
            return False
        return all(p.train == "head" for run in self.checked_plan(params, budget).runs for p in run.phases)
