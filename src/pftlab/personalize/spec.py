"""What every personalization method is, whether a recipe of the shared loop or a baseline.

A recipe (`pftlab.personalize.recipe.Method`) personalizes each client after the global stage,
from the global weights; a process-integrated baseline (`Baseline`: FedPer, FedRep, Ditto)
personalizes during its own federated training. Both answer to this protocol, so the pipeline
asks `spec.integrated` instead of keeping two lists.
"""

from __future__ import annotations

from typing import Any, Protocol

from pftlab.core.schema import Strict


class MethodSpec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def summary(self) -> str: ...

    @property
    def Params(self) -> type[Strict]: ...

    @property
    def integrated(self) -> bool: ...

    def check(self, params: Any, budget: Any) -> str | None: ...
