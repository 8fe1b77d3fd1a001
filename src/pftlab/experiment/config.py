"""The experiment config: a TOML file validated into frozen pydantic models.

It composes the components' own schemas ([data] from pftlab.data, [model] from pftlab.models,
[federated] from pftlab.federated, [personalize] from pftlab.personalize) and checks every name
in them against the registries, which plugins extend, with the list of what is allowed in the
error. Method hyper-parameters live in `[method.<name>]` tables validated by each method's own
Params model.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import Field, ValidationError, model_validator

from pftlab.core.errors import UserError
from pftlab.core.schema import Strict, validation_message
from pftlab.data.config import DataConfig
from pftlab.federated import ALGORITHMS
from pftlab.federated.config import FederatedConfig
from pftlab.models import AUTO, MODELS
from pftlab.models.config import ModelConfig
from pftlab.personalize import METHODS
from pftlab.personalize.config import PersonalizeConfig

MAX_GRID = 64

__all__ = [
    "Config",
    "DataConfig",
    "FederatedConfig",
    "ModelConfig",
    "PersonalizeConfig",
    "RuntimeConfig",
    "Strict",
    "dumps_toml",
    "from_dict",
    "load_config",
]


class RuntimeConfig(Strict):
    threads: int = Field(0, ge=0, le=1024, description="torch threads; 0 = every core this process may use")
    progress: bool = True
    engine: Literal["auto", "loop", "batched"] = Field(
        "auto", description="auto: batched for head-only recipes it covers, the plain loop otherwise (faster on CPU)"
    )
    batch_clients: int = Field(16, ge=1, le=4096, description="clients personalized together by the batched engine")


class Config(Strict):
    seed: int = Field(0, ge=0, le=2**62)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    federated: FederatedConfig = Field(default_factory=FederatedConfig)
    personalize: PersonalizeConfig = Field(default_factory=PersonalizeConfig)
    method: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-method hyper-parameters")
    search: dict[str, dict[str, list[Any]]] = Field(
        default_factory=dict, description="per-method grids, chosen per client on its validation split"
    )
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @model_validator(mode="after")
    def _registered_names(self) -> Config:
        """Every name the config gives is registered (plugins included); the error lists what is allowed."""
        if self.model.name != AUTO and self.model.name not in MODELS:
            allowed = ", ".join([AUTO, *MODELS])
            raise ValueError(f"config: model.name: unknown model {self.model.name!r}; allowed: {allowed}")
        problem = ALGORITHMS.unknown(self.federated.algorithm)
        if problem:
            raise ValueError(f"config: federated.algorithm: {problem}")
        for m in self.personalize.methods:
            problem = METHODS.unknown(m)
            if problem:
                raise ValueError(f"config: personalize.methods: {problem}")
        return self

    @model_validator(mode="after")
    def _method_tables(self) -> Config:
        """Each [method.X] table names a known method and passes its Params and budget checks."""
        for name, table in self.method.items():
            if name not in METHODS:
                raise ValueError(f"unknown method table [method.{name}]; allowed: {', '.join(METHODS)}")
            try:
                METHODS[name].Params.model_validate(table)
            except ValidationError as err:
                raise ValueError(validation_message(err, METHODS[name].Params, f"method.{name}.")) from None
        for name in self.personalize.methods:
            problem = METHODS[name].check(self.method_params(name), self.personalize)
            if problem:
                raise ValueError(f"method.{name}: {problem}")
        for name, grid in self.search.items():
            if name not in self.personalize.methods:
                raise ValueError(f"search.{name}: {name!r} is not in personalize.methods {self.personalize.methods}")
            if METHODS[name].integrated:
                raise ValueError(f"search.{name}: {name!r} is a baseline; grids search post-hoc methods only")
            fields = METHODS[name].Params.model_fields
            for key, values in grid.items():
                if key not in fields:
                    raise ValueError(f"search.{name}: unknown key {key!r}; allowed: {', '.join(fields)}")
                if not 1 <= len(values) <= MAX_GRID:
                    raise ValueError(f"search.{name}.{key}: give 1 to {MAX_GRID} values, got {len(values)}")
            if math.prod(len(v) for v in grid.values()) > MAX_GRID:
                raise ValueError(f"search.{name}: the grid has more than {MAX_GRID} points")
            for point in self.search_grid(name):
                problem = METHODS[name].check(point, self.personalize)
                if problem:
                    raise ValueError(f"search.{name}: {problem}")
        return self

    def search_grid(self, name: str) -> list[Any]:
        """Every grid point of `[search.<name>]` over the method's base parameters; [base] without a grid."""
        base, grid = self.method.get(name, {}), self.search.get(name, {})
        points = []
        for combo in itertools.product(*grid.values()):
            try:
                points.append(METHODS[name].Params.model_validate({**base, **dict(zip(grid, combo, strict=True))}))
            except ValidationError as err:
                raise ValueError(validation_message(err, METHODS[name].Params, f"search.{name}.")) from None
        return points

    def method_params(self, name: str) -> Any:
        return METHODS[name].Params.model_validate(self.method.get(name, {}))

    def resolved(self) -> dict[str, Any]:
        """The whole config with every default filled in, methods' parameters included."""
        out = self.model_dump(mode="json")
        out["data"] = self.data.resolved()
        out["method"] = {m: self.method_params(m).model_dump(mode="json") for m in self.personalize.methods}
        if not self.search:
            del out["search"]
        return out


def from_dict(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise UserError(validation_message(err, Config)) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value`, the value read as a TOML value (3, 0.1, true, "x", [..]) or else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {text!r}: expected KEY=VALUE, e.g. --set personalize.epochs=5")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    if isinstance(parsed, float) and not math.isfinite(parsed):
        raise UserError(f"--set {key.strip()}: must be a finite number (got {value})")
    return key.strip().split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserError(f"--set {'.'.join(path)}: {part!r} is a value, not a table")
            node = child
        node[path[-1]] = value
    return raw


def load_config(path: Path | None, overrides: list[str] = ()) -> Config:  # type: ignore[assignment]
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file {str(path)!r} not found")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"config file {str(path)!r} is not valid TOML: {err}") from None
    return from_dict(apply_overrides(raw, list(overrides)))


def dumps_toml(cfg: Config) -> str:
    return tomli_w.dumps(cfg.resolved())
