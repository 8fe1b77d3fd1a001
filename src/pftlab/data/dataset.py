"""The data types every stage passes along: plain arrays plus the metadata to interpret them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Samples `x` (N, ...) float32 and integer labels `y` (N,) in [0, num_classes)."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")
        if self.y.ndim != 1:
            raise ValueError(f"y must be one-dimensional, got shape {self.y.shape}")
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got {self.y.min()}..{self.y.max()}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, indices: np.ndarray) -> Dataset:
        """The samples at `indices`; per-sample arrays in meta (length N) are indexed with them."""
        per_sample = {k for k, v in self.meta.items() if isinstance(v, np.ndarray) and v.ndim and len(v) == len(self)}
        meta = {k: v[indices] if k in per_sample else v for k, v in self.meta.items()}
        return Dataset(self.x[indices], self.y[indices], self.num_classes, self.name, meta)

    def label_counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=self.num_classes)


@dataclass(frozen=True)
class ClientData:
    """One client's train / val / test splits; `domain` names its input distribution."""

    client_id: int
    train: Dataset
    val: Dataset
    test: Dataset
    domain: str = ""


@dataclass(frozen=True)
class FederatedData:
    """A federation: per-client splits plus the content hash of how it was made."""

    name: str
    clients: list[ClientData]
    num_classes: int
    input_shape: tuple[int, ...]
    partition_hash: str
    partition: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""

    @property
    def num_clients(self) -> int:
        return len(self.clients)

    def sizes(self) -> dict[str, list[int]]:
        return {split: [len(getattr(c, split)) for c in self.clients] for split in ("train", "val", "test")}
