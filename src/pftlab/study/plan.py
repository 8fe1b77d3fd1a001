"""What a study runs: one cell per (benchmark config, seed), every method in each cell.

A cell is one `run_experiment` call; its config is the benchmark's file under
configs/benchmarks/ with the study's changes on top (quick schedule, methods, seed, --set).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pftlab.core.args import check_outputs
from pftlab.core.errors import UserError
from pftlab.core.io import cache_dir
from pftlab.data.benchmarks import BENCHMARKS
from pftlab.data.show import files_present
from pftlab.data.sources.files import DATA_ENV, data_root, decoded_dir
from pftlab.experiment.config import Config, apply_overrides, from_dict
from pftlab.personalize import METHODS


def configs_dir() -> Path:
    """configs/benchmarks/: the checkout's (a source checkout or an editable install), else the wheel's copy.

    A built wheel carries the repository's configs/ as package data under pftlab/_data/configs (pyproject.toml,
    force-include), so an installed pftlab runs `pftlab study` with no checkout.
    """
    checkout = Path(__file__).parents[3] / "configs" / "benchmarks"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("pftlab") / "_data" / "configs" / "benchmarks"))


CONFIGS = configs_dir()

# --quick: every benchmark at its quick size, 5 FedAvg rounds and a 3-epoch budget (LP-FT: 1 LP + 2 FT;
# LSS needs an epoch per pool member), so the whole sweep (3 seeds, every method) takes minutes on
# 2 cores. Numbers from it test the pipeline, not the study's claims.
QUICK = (
    'data.size="quick"',
    "federated.rounds=5",
    "personalize.epochs=3",
    "method.lp-ft.lp_epochs=1",
    "method.lp-ft-kumar.lp_epochs=1",
)
# ... and the image benchmarks at half their quick size again (the keys each benchmark has).
QUICK_DATA: dict[str, tuple[str, ...]] = {
    "cifar10c": ("data.samples_per_client=60",),
    "digits": ("data.samples_per_client=100",),
    "colored-mnist": ("data.samples_per_client=100",),
    "cifar10-dirichlet": ("data.samples=600",),
    "fmnist-dirichlet": ("data.samples=600",),
    "mnist-writers": ("data.writers=8",),
}


@dataclass(frozen=True)
class Cell:
    """One (benchmark, seed): its resolved config and its run directory."""

    benchmark: str
    seed: int
    cfg: Config
    out: Path


def benchmark_configs(configs: Path, names: list[str] | None) -> dict[str, dict[str, Any]]:
    """The raw TOML of each benchmark config (by file stem), all of them or the named ones in the given order."""
    found = {p.stem: p for p in sorted(configs.glob("*.toml"))}
    if not found:
        raise UserError(f"no benchmark configs (*.toml) in {configs}")
    unknown = [n for n in names or [] if n not in found]
    if unknown:
        raise UserError(f"--benchmarks: unknown {', '.join(unknown)}; allowed: {', '.join(found)}")
    chosen = names or list(found)
    if len(set(chosen)) != len(chosen):
        raise UserError(f"--benchmarks must not repeat, got {' '.join(chosen)}")
    return {n: tomllib.loads(found[n].read_text(encoding="utf-8")) for n in chosen}


def default_methods() -> list[str]:
    """Every name personalize.methods accepts: the post-hoc methods, then the process-integrated baselines."""
    return METHODS.names()


def check_methods(methods: list[str] | None) -> list[str]:
    allowed = default_methods()
    chosen = methods or allowed
    unknown = [m for m in chosen if m not in allowed]
    if unknown:
        raise UserError(f"--methods: unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    if len(set(chosen)) != len(chosen):
        raise UserError(f"--methods must not repeat, got {' '.join(chosen)}")
    return chosen


def check_seeds(seeds: list[int]) -> list[int]:
    if not seeds or len(set(seeds)) != len(seeds) or any(not 0 <= s <= 2**62 for s in seeds):
        raise UserError(f"--seeds must be distinct integers in [0, 2^62], got {seeds}")
    return seeds


@dataclass(frozen=True)
class Request:
    """What a study is asked for: the command line as plain data."""

    out: Path
    quick: bool = False
    seeds: tuple[int, ...] = (0, 1, 2)
    benchmarks: tuple[str, ...] = ()  # () = every config in `configs`
    methods: tuple[str, ...] = ()  # () = every method
    overrides: tuple[str, ...] = ()
    progress: bool = True
    configs: Path = CONFIGS
    report_only: bool = False  # read each cell's summary.json as it is; run and verify nothing
    grids: Path | None = None  # a TOML of [search.<method>] grids and a [choice] table, for every cell


# A cell's numbers depend in their last digits on the thread count, and runtime.threads = 0 would take
# whatever cores are free when the cell starts: a study fixes it (every published cell ran with 2);
# `--set runtime.threads=N` chooses another.
STUDY_THREADS = 2


def read_grids(path: Path | None) -> dict[str, Any]:
    """The --grids file: [search.<method>] tables (a grid per method) and a [choice] table, nothing else."""
    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UserError(f"--grids {path}: cannot read it ({type(err).__name__}: {err})") from None
    other = [k for k in raw if k not in ("search", "choice")]
    if other:
        raise UserError(f"--grids {path}: unknown table(s) {', '.join(other)}; allowed: search, choice")
    unknown = [m for m in raw.get("search", {}) if m not in METHODS]
    if unknown:
        raise UserError(
            f"--grids {path}: unknown method(s) {', '.join(unknown)} in [search]; allowed: {', '.join(METHODS)}"
        )
    return raw


def with_grids(raw: dict[str, Any], grids: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """The benchmark's config with the grids of the cell's methods and the choice rules on top."""
    out: dict[str, Any] = json.loads(json.dumps(raw))
    search = {m: g for m, g in grids.get("search", {}).items() if m in methods}
    if search:
        out["search"] = {**out.get("search", {}), **search}
    if "choice" in grids:
        out["choice"] = grids["choice"]
    return out


def cell_config(req: Request, name: str, raw: dict[str, Any], seed: int, methods: list[str]) -> Config:
    """The benchmark's config with the --grids file's grids and choice rules, then the study's thread
    count, the quick schedule, the methods, the user's --set, the seed."""
    raw = with_grids(raw, read_grids(req.grids), methods)
    changes = [f"runtime.threads={STUDY_THREADS}"]
    changes += [*QUICK, *QUICK_DATA.get(name, ())] if req.quick else []
    changes += [f"personalize.methods={json.dumps(methods)}", *req.overrides, f"seed={seed}"]
    if not req.progress:
        changes.append("runtime.progress=false")
    try:
        return from_dict(apply_overrides(json.loads(json.dumps(raw)), changes))
    except UserError as err:
        raise UserError(f"benchmark {name}: {err}") from None


def plan_cells(req: Request) -> list[Cell]:
    """Every cell, benchmark-major; every argument and config is validated before anything runs."""
    seeds = check_seeds(list(req.seeds))
    methods = check_methods(list(req.methods))
    configs = benchmark_configs(req.configs, list(req.benchmarks))
    check_outputs(req.out)  # the study folder (DIR/cache inside it) and the user cache (decoded arrays) take files
    return [
        Cell(name, s, cell_config(req, name, raw, s, methods), req.out / "runs" / name / f"seed{s}")
        for name, raw in configs.items()
        for s in seeds
    ]


def missing_data(cfg: Config) -> str | None:
    """Why the benchmark cannot run here (its source files are not under the data root), or None."""

    files = BENCHMARKS[cfg.data.benchmark].files
    present = files_present(files)
    if not present.startswith("missing"):
        return None
    return f"data files {present} under {data_root()} (see 'pftlab data list'; set $PFTLAB_DATA)"


@contextmanager
def study_cache(out: Path) -> Iterator[Path]:
    """Keep global checkpoints in DIR/cache (unless $PFTLAB_CACHE is set), so a study is self-contained.

    The data root is pinned where it was, and DIR/cache/decoded links to the user cache's decoded
    arrays: they are a pure function of checksummed source files, and hundreds of MB.
    """

    if os.environ.get("PFTLAB_CACHE"):
        yield cache_dir()
        return
    saved = {k: os.environ.get(k) for k in ("PFTLAB_CACHE", DATA_ENV)}
    root, decoded = data_root(), decoded_dir()
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    decoded.mkdir(parents=True, exist_ok=True)
    link = cache / "decoded"
    if link.is_symlink() and not link.exists():  # the user cache moved or was deleted
        link.unlink()
    if not link.exists():
        link.symlink_to(decoded.resolve(), target_is_directory=True)
    os.environ[DATA_ENV], os.environ["PFTLAB_CACHE"] = str(root), str(cache)
    try:
        yield cache
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
