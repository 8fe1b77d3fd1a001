"""What a benchmark is: its parameters, its default and quick sizes, and how it makes client pools."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from pftlab.data.federate import ClientPool


@dataclass(frozen=True)
class Benchmark:
    name: str
    shift: str
    description: str
    Params: type[BaseModel]
    pools: Callable[[Any, int], list[ClientPool]]
    quick: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # data files it reads, relative to the data root ("NAME/": a folder)
    size: Callable[[Any], str] = lambda p: f"{p.num_clients} clients"


def idx_files(folder: str, splits: tuple[str, ...] = ("train", "t10k")) -> tuple[str, ...]:
    """The gzip IDX files of an MNIST-format folder."""
    return tuple(f"{folder}/{s}-{k}-ubyte.gz" for s in splits for k in ("images-idx3", "labels-idx1"))
