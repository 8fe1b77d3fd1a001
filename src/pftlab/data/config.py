"""The [data] table: keys every benchmark shares, plus the named benchmark's own Params."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from pftlab.core.schema import Strict, validation_message
from pftlab.data.benchmarks import BENCHMARKS


class DataConfig(Strict):
    """Keys every benchmark shares; any other key of [data] belongs to the benchmark's own Params."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)

    benchmark: str = "digits-quick"
    size: Literal["quick", "default"] = Field("default", description="quick: small, for tests and a first look")
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.25, gt=0, lt=1)
    swap_pairs: int = Field(0, ge=0, le=1000, description="concept shift: class pairs whose labels each client swaps")
    normalize: bool = Field(False, description="images: per-channel mean / std of the pooled training splits")
    augment: Literal["none", "crop", "flip", "crop-flip"] = Field(
        "none", description="images, training batches only: random crop after padding, horizontal flip, or both"
    )
    crop_padding: int = Field(4, ge=0, le=64, description="pixels of zero padding around the random crop")

    @model_validator(mode="after")
    def _benchmark_params(self) -> DataConfig:
        if self.val_fraction + self.test_fraction > 0.8:
            raise ValueError("val_fraction + test_fraction must be <= 0.8 so every client keeps training data")
        problem = BENCHMARKS.unknown(self.benchmark)
        if problem:
            raise ValueError(f"config: data.benchmark: {problem}")
        self.params()
        return self

    def params(self) -> Any:
        """The benchmark's validated parameters: its defaults, then its quick sizes, then the config's keys."""
        bench = BENCHMARKS[self.benchmark]
        given = {**(bench.quick if self.size == "quick" else {}), **(self.model_extra or {})}
        try:
            return bench.Params.model_validate(given)
        except ValidationError as err:
            e = err.errors(include_url=False)[0]
            if e["type"] == "extra_forbidden":
                allowed = [*type(self).model_fields, *bench.Params.model_fields]
                raise ValueError(
                    f"config: unknown key 'data.{e['loc'][0]}' for benchmark {self.benchmark!r}; "
                    f"allowed: {', '.join(allowed)}"
                ) from None
            raise ValueError(validation_message(err, bench.Params, "data.")) from None

    def resolved(self) -> dict[str, Any]:
        generic = {k: getattr(self, k) for k in type(self).model_fields}
        return {**generic, **self.params().model_dump(mode="json")}
