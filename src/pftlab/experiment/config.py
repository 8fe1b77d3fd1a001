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
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import Field, ValidationError, model_validator

from pftlab.core.errors import UserError
from pftlab.core.schema import Strict, validation_message
from pftlab.data.config import DataConfig
from pftlab.evaluate.choice import ChoiceConfig
from pftlab.evaluate.config import EvaluateConfig
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
    "EvaluateConfig",
    "FederatedConfig",
    "ModelConfig",
    "PersonalizeConfig",
    "PretrainConfig",
    "RuntimeConfig",
    "Strict",
    "dumps_toml",
    "from_dict",
    "load_config",
]


class RuntimeConfig(Strict):
    threads: int = Field(
        0,
        ge=0,
        le=1024,
        description=(
            "torch threads; 0 = auto: the cores this process may use that other processes leave free "
            "when the run starts (a resumed run keeps the count of its saved results)"
        ),
    )
    progress: bool = True
    engine: Literal["auto", "loop", "batched"] = Field(
        "auto", description="auto: batched for head-only recipes it covers, the plain loop otherwise (faster on CPU)"
    )
    batch_clients: int = Field(16, ge=1, le=4096, description="clients personalized together by the batched engine")
    device: str = Field(
        "auto", min_length=1, max_length=32, description="auto (CUDA, else MPS, else CPU) | cpu | cuda | cuda:N | mps"
    )
    precision: Literal["fp32", "bf16", "tf32"] = Field(
        "fp32", description="bf16: autocast forward/backward, fp32 weights and sums; tf32: CUDA matmuls"
    )


class PretrainConfig(Strict):
    """`pftlab pretrain`: the model trained centrally on the pooled train + val splits of another
    federation (data no client of the run holds), for `model.init`. Not part of a run's key."""

    data: DataConfig = Field(
        default_factory=lambda: DataConfig(benchmark="fmnist-dirichlet"),
        description="the pretraining data: a benchmark's federation, pooled (its clients do not matter)",
    )
    epochs: int = Field(5, ge=1, le=1000)
    lr: float = Field(0.05, gt=0, le=10)
    batch_size: int = Field(64, ge=1, le=1_000_000)
    momentum: float = Field(0.9, ge=0, lt=1)


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
    choice: ChoiceConfig = Field(default_factory=ChoiceConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)

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
                params = METHODS[name].Params.model_validate(table)
            except ValidationError as err:
                raise ValueError(validation_message(err, METHODS[name].Params, f"method.{name}.")) from None
            # a control's table is accepted only as its followed method's parameters (what resolved() writes
            # into a run's config.toml, so that the run can be loaded again); it sets nothing of its own
            followed = getattr(METHODS[name], "follows", "")
            if followed and params != self.method_params(name):
                raise ValueError(f"[method.{name}]: {name} runs at {followed}'s parameters; set [method.{followed}]")
        for name in self.personalize.methods:
            problem = METHODS[name].check(self.method_params(name), self.personalize)
            if problem:
                raise ValueError(f"method.{name}: {problem}")
        methods = self.personalize.methods
        for name in methods:
            followed = getattr(METHODS[name], "follows", "")
            if followed and name in self.search:
                raise ValueError(
                    f"search.{name}: {name} is a control of {followed} and takes {followed}'s choice; "
                    f"give the grid as [search.{followed}]"
                )
            if (
                followed
                and followed in self.search
                and (followed not in methods or methods.index(followed) > methods.index(name))
            ):
                raise ValueError(
                    f"personalize.methods: {name} takes each client's choice from {followed}'s grid; "
                    f"list {followed} before {name}"
                )
        for name, grid in self.search.items():
            if name not in self.personalize.methods:
                raise ValueError(f"search.{name}: {name!r} is not in personalize.methods {self.personalize.methods}")
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
        if followed := getattr(METHODS[name], "follows", ""):  # a control: the grid of the method it follows
            return [METHODS[name].Params.model_validate(p.model_dump()) for p in self.search_grid(followed)]
        base, grid = self.method.get(name, {}), self.search.get(name, {})
        points = []
        for combo in itertools.product(*grid.values()):
            try:
                points.append(METHODS[name].Params.model_validate({**base, **dict(zip(grid, combo, strict=True))}))
            except ValidationError as err:
                raise ValueError(validation_message(err, METHODS[name].Params, f"search.{name}.")) from None
        return points

    def method_params(self, name: str) -> Any:
        """The method's parameters: its [method.<name>] table, or for a control the method's it follows."""
        source = getattr(METHODS[name], "follows", "") or name
        return METHODS[name].Params.model_validate(self.method.get(source, {}))

    def resolved(self) -> dict[str, Any]:
        """The whole config with every default filled in, methods' parameters included."""
        out = self.model_dump(mode="json")
        out["data"] = self.data.resolved()
        out["method"] = {m: self.method_params(m).model_dump(mode="json") for m in self.personalize.methods}
        if not self.search:
            del out["search"]
        if self.choice == ChoiceConfig():
            del out["choice"]  # the default (own validation split) leaves every earlier run's key as it was
        elif "cross-site" not in self.choice.rules:
            del out["choice"]["weight"], out["choice"]["pool_images"]  # only the cross-site rule reads them
        if self.pretrain == PretrainConfig():
            del out["pretrain"]  # only `pftlab pretrain` reads it: a run's config and key leave it out
        else:
            out["pretrain"]["data"] = self.pretrain.data.resolved()
        return out


MAX_DEPTH = 16  # tables and lists inside one another; a config needs 4


def check_depth(raw: Any, limit: int = MAX_DEPTH, what: str = "config") -> None:
    """Refuse a value nested deeper than `limit` (lists and tables inside one another), without recursing.

    A value nested thousands deep would otherwise end in a RecursionError somewhere in validation.
    The message names the key down to its third level (a key as long as the nesting is never built).
    """
    stack: list[tuple[Any, int, str]] = [(raw, 0, "")]
    while stack:
        node, depth, key = stack.pop()
        if depth > limit:
            where = f"the value of {key}" if key else "a value"
            raise UserError(f"{what}: {where} is nested more than {limit} levels deep; flatten it")
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list | tuple):
            items = enumerate(node)
        else:
            continue
        for k, v in items:  # the key is named down to its third table; list items keep their table's key
            named = depth < 3 and isinstance(node, dict)
            stack.append((v, depth + 1, (f"{key}.{k}" if key else str(k)) if named else key))


_KEY_PART = re.compile(r"""[\w\-"' ]+""")  # a bare or quoted key, between two dots of a dotted key


def check_key_depth(text: str, what: str, limit: int = 4 * MAX_DEPTH) -> None:
    """Refuse a dotted key of more than `limit` parts (`a.b.c = 1`, `[a.b.c]`, `{a.b.c = 1}`) before TOML reads it.

    tomllib's time and memory grow with the square of a dotted key's length (a 20,000-part key in a 40 kB
    file takes 1.8 GB and seconds; 200,000 parts, minutes); no config needs more than a few parts. Linear in
    the text: each line is split at its dots once. A run of `limit` dots with a key-like word between each two
    is refused (a line of numbers has commas between its dots; a string value of 64 dotted words would be too).
    """
    for number, line in enumerate(text.splitlines(), 1):
        if line.count(".") < limit:  # cheap: most lines have few dots
            continue
        run = 0
        for part in line.split(".")[1:-1]:  # the words between two dots
            run = run + 1 if _KEY_PART.fullmatch(part) and part.strip() else 0
            if run >= limit - 1:
                raise UserError(f"{what}: line {number}: a key of more than {limit} dotted parts; flatten it")


def from_dict(raw: dict[str, Any]) -> Config:
    check_depth(raw)
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise UserError(validation_message(err, Config)) from None
    except RecursionError:  # a self-referencing dict or list, built in Python
        raise UserError("config: a value contains itself or is nested too deeply; flatten it") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value`, the value read as a TOML value (3, 0.1, true, "x", [..]) or else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {text!r}: expected KEY=VALUE, e.g. --set personalize.epochs=5")
    check_key_depth(value, f"--set {key.strip()}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    except RecursionError:
        raise UserError(f"--set {key.strip()}: the value is nested too deeply; flatten it") from None
    check_depth(parsed, what=f"--set {key.strip()}")
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
        try:
            if not path.is_file():
                raise UserError(f"config file {str(path)!r} not found")
            text = path.read_text(encoding="utf-8")
            check_key_depth(text, f"config file {str(path)!r}")
            raw = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"config file {str(path)!r} is not valid TOML: {err}") from None
        except RecursionError:
            raise UserError(f"config file {str(path)!r}: a value is nested too deeply to read; flatten it") from None
        except OSError as err:  # a file that cannot be read (permissions, a FIFO's error, an I/O error)
            raise UserError(f"config file {str(path)!r} cannot be read: {err.strerror or err}") from None
        if not raw:
            raise UserError(
                f"config file {str(path)!r} is empty (no keys, only blanks or comments); give at least "
                "[data] benchmark = \"...\" (see configs/quickstart.toml, or 'pftlab data list' for the names)"
            )
    return from_dict(apply_overrides(raw, list(overrides)))


def dumps_toml(cfg: Config) -> str:
    return tomli_w.dumps(cfg.resolved())
