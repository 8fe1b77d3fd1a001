"""The optimizer keys the one training loop reads (shared by the global stage and personalization)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pftlab.core.schema import Strict


class OptimizerConfig(Strict):
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    weight_decay: float = Field(0.0, ge=0, le=1)
    batch_size: int = Field(32, ge=1, le=1_000_000)
