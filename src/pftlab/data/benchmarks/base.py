"""What a benchmark is: its parameters, its default and quick sizes, and how it makes client pools."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pftlab.data.federate import ClientPool


@dataclass(frozen=True)
class Benchmark:
    name: str
    shift: str
    description: str
    Params: type
    pools: Callable[[Any, int], list[ClientPool]]
    quick: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # data files it reads, relative to the data root
