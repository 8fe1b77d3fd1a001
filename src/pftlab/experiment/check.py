"""`pftlab run CONFIG --check`: everything a run would refuse, found in a second, with nothing built or written.

A config that passes here gets past every input check of a real run: the config and the
benchmark's parameters validate, every method (and every point of its search grid) has a plan
that fills the epoch budget, the data files or the user's path exist, and the run directory
can be created. The user's own data (a table or an image folder) is read and partitioned, so
data that does not fit the request (too few clients or classes, a client left without a train
or test sample) is refused here too; a built-in benchmark's files are only checked to exist
(decoding them can take minutes), so its split sizes are checked when the run builds the
federation, still before any training. Nothing is trained or written.
"""

from __future__ import annotations

from pathlib import Path

from pftlab.core.args import check_out_dir, check_seeds
from pftlab.core.compute import resolve as resolve_compute
from pftlab.core.errors import UserError
from pftlab.data.benchmarks import BENCHMARKS, build_federation
from pftlab.data.sources.files import DATA_ENV, data_root, origin, present
from pftlab.experiment.config import Config
from pftlab.personalize import METHODS, Method


def check_data(cfg: Config) -> str:
    """The benchmark's files (or the user's path) exist; returns a short description of the data."""
    bench = BENCHMARKS[cfg.data.benchmark]
    params = cfg.data.params()
    path = getattr(params, "path", None)
    if path is not None and not getattr(params, "hub", ""):  # the user's own data: image-folder, table, hf
        if not path:
            raise UserError(f"data.path is required for benchmark {bench.name!r}: {bench.description}")
        if "\0" in path or not Path(path).expanduser().exists():
            raise UserError(f"data.path {path!r} does not exist; expected {bench.description}")
        fed = build_federation(cfg.data, cfg.seed)  # reads the user's files; caches nothing
        return f"{bench.name} from {path}: {fed.num_clients} clients, {fed.num_classes} classes"
    missing = [f for f in bench.files if not present(f)]
    if missing:
        raise UserError(
            f"benchmark {bench.name!r} needs {len(missing)} missing file(s) under {data_root()}, e.g. {missing[0]} "
            f"(from {origin(missing[0])}); 'pftlab data fetch {bench.name}' gets what can be fetched, "
            f"or set ${DATA_ENV} to the folder that holds the datasets"
        )
    return f"{bench.name} ({cfg.data.size}: {bench.size(params)})"


def check_methods(cfg: Config) -> list[str]:
    """Every method's plan, for every point of its search grid, fills the shared epoch budget."""
    lines = []
    for name in cfg.personalize.methods:
        method = METHODS[name]
        if not isinstance(method, Method):  # a process-integrated baseline: no plan, its table was validated
            lines.append(f"{name} (baseline, {cfg.federated.rounds} rounds)")
            continue
        points = cfg.search_grid(name)
        for params in points:
            if method.custom is None:
                try:
                    method.checked_plan(params, cfg.personalize)
                except ValueError as err:
                    raise UserError(f"method.{name}: {err}") from None
        grid = f", {len(points)} grid points" if len(points) > 1 else ""
        lines.append(f"{name} ({cfg.personalize.epochs} epochs{grid})")
    return lines


def check_run(cfg: Config, out: Path, seeds: list[int] | None = None) -> str:
    """One line saying what the run would do; raises UserError naming the first problem."""
    check_seeds(seeds)
    check_out_dir(out)
    compute = resolve_compute(cfg.runtime.device, cfg.runtime.precision)  # the device is there
    data = check_data(cfg)
    methods = check_methods(cfg)
    runs = f"{len(seeds)} seeds" if seeds else f"seed {cfg.seed}"
    return (
        f"config OK: {data}; {cfg.federated.algorithm} for {cfg.federated.rounds} rounds; "
        f"methods {', '.join(methods)}; {runs}; on {compute.device} in {compute.precision}; "
        f"results would go to {out}/"
    )
