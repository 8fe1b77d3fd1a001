"""The experiment config: a TOML file validated into frozen pydantic models.

Unknown keys, wrong types (no silent coercion), NaN / inf and out-of-range values are refused
with one line naming the key and what is allowed. Method hyper-parameters live in
`[method.<name>]` tables validated by each method's own Params model.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pftlab.errors import UserError

MAX_GRID = 64


class Strict(BaseModel):
    """Base of every config table: no unknown keys, no type coercion, no NaN or inf."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class PartitionParams(Strict):
    """Label-skew keys shared by every benchmark that partitions a pool of samples."""

    num_clients: int = Field(10, ge=2, le=100_000)
    partition: Literal["iid", "dirichlet", "pathological"] = "dirichlet"
    alpha: float = Field(0.5, gt=0, le=1e6, description="Dirichlet concentration; large is close to IID")
    classes_per_client: int = Field(2, ge=1, le=100_000, description="for partition = 'pathological'")
    min_client_size: int = Field(20, ge=3, le=10_000_000, description="before the train / val / test split")


class DataConfig(Strict):
    """Keys every benchmark shares; any other key of [data] belongs to the benchmark's own Params."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)

    benchmark: str = "digits-quick"
    size: Literal["quick", "default"] = Field("default", description="quick: small, for tests and a first look")
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.25, gt=0, lt=1)
    swap_pairs: int = Field(0, ge=0, le=1000, description="concept shift: class pairs whose labels each client swaps")

    @model_validator(mode="after")
    def _benchmark_params(self) -> DataConfig:
        from pftlab.data.benchmarks import BENCHMARKS

        if self.val_fraction + self.test_fraction > 0.8:
            raise ValueError("val_fraction + test_fraction must be <= 0.8 so every client keeps training data")
        if self.benchmark not in BENCHMARKS:
            allowed = ", ".join(BENCHMARKS)
            raise ValueError(f"config: data.benchmark: unknown benchmark {self.benchmark!r}; allowed: {allowed}")
        self.params()
        return self

    def params(self) -> Any:
        """The benchmark's validated parameters: its defaults, then its quick sizes, then the config's keys."""
        from pftlab.data.benchmarks import BENCHMARKS

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
            raise ValueError(_one_line(err, bench.Params, "data.")) from None

    def resolved(self) -> dict[str, Any]:
        generic = {k: getattr(self, k) for k in type(self).model_fields}
        return {**generic, **self.params().model_dump(mode="json")}


class ModelConfig(Strict):
    name: Literal["auto", "cnn", "mlp"] = Field("auto", description="auto: cnn for images, mlp for tables")
    width: int = Field(32, ge=1, le=1024, description="cnn: channels of the first conv layer")
    hidden: int = Field(128, ge=1, le=16_384, description="width of the feature layer")
    layers: int = Field(2, ge=1, le=64, description="mlp: number of hidden layers")
    norm: Literal["none", "batch"] = Field("none", description="cnn: BatchNorm after each convolution")


class OptimizerConfig(Strict):
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    weight_decay: float = Field(0.0, ge=0, le=1)
    batch_size: int = Field(32, ge=1, le=1_000_000)


class FederatedConfig(OptimizerConfig):
    """The global stage; the optimizer keys are the clients' local optimizer."""

    algorithm: Literal["fedavg", "fedprox", "scaffold", "fedavgm", "fedadam", "fedbabu"] = "fedavg"
    rounds: int = Field(30, ge=0, le=100_000)
    clients_per_round: int = Field(0, ge=0, le=100_000, description="0 = every client every round")
    local_epochs: int = Field(1, ge=1, le=10_000)
    lr: float = Field(0.05, gt=0, le=100)
    dropout: float = Field(0.0, ge=0, le=1, description="probability that a sampled client drops out of a round")
    prox_mu: float = Field(0.01, ge=0, le=1e6, description="fedprox: mu/2 ||w - w_global||^2 in the local loss")
    server_lr: float = Field(
        0.0, ge=0, le=100, description="scaffold, fedavgm, fedadam: server step size; 0 = 1 (fedadam: 0.01)"
    )
    server_momentum: float = Field(0.9, ge=0, lt=1, description="fedavgm: momentum of the server update")
    beta1: float = Field(0.9, ge=0, lt=1, description="fedadam: first-moment decay")
    beta2: float = Field(0.99, ge=0, lt=1, description="fedadam: second-moment decay")
    tau: float = Field(1e-3, gt=0, le=10, description="fedadam: adaptivity (added to the root of the second moment)")

    @model_validator(mode="after")
    def _scaffold_sgd(self) -> FederatedConfig:
        if self.algorithm == "scaffold" and self.optimizer != "sgd":
            raise ValueError("config: federated.optimizer: scaffold's control variates need 'sgd' local steps")
        return self


class PersonalizeConfig(OptimizerConfig):
    methods: list[str] = Field(default=["ft", "lp", "lp-ft"], min_length=1, max_length=100)
    epochs: int = Field(15, ge=1, le=10_000, description="the budget every method shares")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        known = method_specs()
        for m in methods:
            if m not in known:
                raise ValueError(f"unknown method {m!r}; allowed: {', '.join(known)}")
        if len(set(methods)) != len(methods):
            raise ValueError("methods must not repeat")
        return methods


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
    def _method_tables(self) -> Config:
        """Each [method.X] table names a known method and passes its Params and budget checks."""
        from pftlab.personalize import METHODS

        known = method_specs()
        for name, table in self.method.items():
            if name not in known:
                raise ValueError(f"unknown method table [method.{name}]; allowed: {', '.join(known)}")
            try:
                known[name].Params.model_validate(table)
            except ValidationError as err:
                raise ValueError(_one_line(err, known[name].Params, f"method.{name}.")) from None
        for name in self.personalize.methods:
            problem = METHODS[name].check(self.method_params(name), self.personalize) if name in METHODS else None
            if problem:
                raise ValueError(f"method.{name}: {problem}")
        for name, grid in self.search.items():
            if name not in self.personalize.methods:
                raise ValueError(f"search.{name}: {name!r} is not in personalize.methods {self.personalize.methods}")
            if name not in METHODS:
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
        from pftlab.personalize import METHODS

        base, grid = self.method.get(name, {}), self.search.get(name, {})
        points = []
        for combo in itertools.product(*grid.values()):
            try:
                points.append(METHODS[name].Params.model_validate({**base, **dict(zip(grid, combo, strict=True))}))
            except ValidationError as err:
                raise ValueError(_one_line(err, METHODS[name].Params, f"search.{name}.")) from None
        return points

    def method_params(self, name: str) -> Any:
        return method_specs()[name].Params.model_validate(self.method.get(name, {}))

    def resolved(self) -> dict[str, Any]:
        """The whole config with every default filled in, methods' parameters included."""
        out = self.model_dump(mode="json")
        out["data"] = self.data.resolved()
        out["method"] = {m: self.method_params(m).model_dump(mode="json") for m in self.personalize.methods}
        if not self.search:
            del out["search"]
        return out


def method_specs() -> dict[str, Any]:
    """Every name allowed in personalize.methods: post-hoc methods, then process-integrated baselines."""
    from pftlab.baselines import BASELINES
    from pftlab.personalize import METHODS

    return {**METHODS, **BASELINES}


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _one_line(err: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first error as 'config: KEY: what is wrong (got VALUE)'."""
    e = err.errors(include_url=False)[0]
    loc = tuple(e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    if msg.startswith("config: "):  # already formatted by a nested validation
        return msg
    key = prefix + ".".join(str(p) for p in loc) if loc else prefix.rstrip(".")
    if e["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        return f"config: unknown key {key!r}; allowed here: {', '.join(allowed) or '(none)'}"
    got = e.get("input")
    shown = "" if isinstance(got, dict) or not loc else f" (got {got!r})"
    return f"config: {key}: {msg}{shown}" if key else f"config: {msg}"


def from_dict(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise UserError(_one_line(err, Config)) from None


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
