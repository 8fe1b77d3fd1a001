"""The [personalize] table: which methods run, and the epoch budget and optimizer they all share."""

from __future__ import annotations

from pydantic import Field, field_validator

from pftlab.training.config import OptimizerConfig


class PersonalizeConfig(OptimizerConfig):
    methods: list[str] = Field(
        default=["ft", "lp", "lp-ft"], min_length=1, max_length=100, description="registered methods (`pftlab methods`)"
    )
    epochs: int = Field(15, ge=1, le=10_000, description="the budget every method shares")

    @field_validator("methods")
    @classmethod
    def _no_repeats(cls, methods: list[str]) -> list[str]:
        if len(set(methods)) != len(methods):
            raise ValueError("methods must not repeat")
        return methods
