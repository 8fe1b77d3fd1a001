"""The public entry point: run a config and get typed results back, or load them from a run directory.

`run` is `pftlab run` as a function. `Results` reads what a run directory holds (summary.json,
clients.csv, matrices/) into plain Python and NumPy, so a notebook or another tool never parses
the files itself.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console

from pftlab.core.errors import CorruptFile, UserError
from pftlab.core.sealed import verify_folder
from pftlab.experiment.config import Config, apply_overrides, from_dict, load_config
from pftlab.experiment.runner import ModelFn, run_experiment

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Results", "run"]

NUMERIC = ("client", "n_train", "n_test")


@dataclass(frozen=True)
class Results:
    """A finished run: its summary, each method's accuracy matrix (percent) and the per-client rows."""

    run_dir: Path
    summary: dict[str, Any]
    # method -> A[i, j], model i on client j's test set; in sampled mode only the sampled clients'
    # columns j (summary["evaluation"]["sample_clients"])
    matrices: dict[str, np.ndarray] = field(repr=False)
    clients: list[dict[str, Any]] = field(repr=False)  # one row per method and client (clients.csv)

    @property
    def methods(self) -> list[str]:
        return list(self.summary["methods"])

    def metric(self, method: str, name: str) -> float:
        """One summary metric, e.g. `results.metric("lp-ft", "global")`."""
        try:
            return float(self.summary["methods"][method][name])
        except KeyError:
            raise UserError(f"no metric {name!r} for method {method!r}; methods: {', '.join(self.methods)}") from None

    @classmethod
    def load(cls, run_dir: Path | str) -> Results:
        """The results of a finished run directory, its files checked against its manifest.json
        (a run edited or damaged since it was written is refused: rerun it to repair it)."""
        run_dir = Path(run_dir)
        summary_file = run_dir / "summary.json"
        if not summary_file.is_file():
            raise UserError(f"{str(run_dir)!r} holds no finished run (no summary.json)")
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
        reads = ["summary.json", "clients.csv", *(f"matrices/{m}.csv" for m in summary.get("methods", {}))]
        why = verify_folder(run_dir, None, reads)
        if why is not None:
            raise CorruptFile(f"{str(run_dir)!r} does not verify: {why}; rerun its config to repair it")
        matrices = {}
        for method in summary["methods"]:
            with open(run_dir / "matrices" / f"{method}.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))[1:]
            matrices[method] = np.array([[float(v) for v in r[1:]] for r in rows])
        with open(run_dir / "clients.csv", newline="", encoding="utf-8") as f:
            clients = [_typed(row) for row in csv.DictReader(f)]
        return cls(run_dir, summary, matrices, clients)

    def to_pandas(self) -> pd.DataFrame:
        """clients.csv as a DataFrame (pandas is optional: `pip install pandas`)."""
        try:
            import pandas as pd  # optional dependency, imported only here
        except ImportError:
            raise UserError("Results.to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(self.clients)


def _typed(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in ("method", "domain"):
            out[k] = v
        elif k in NUMERIC:
            out[k] = int(v)
        else:
            out[k] = float(v) if v != "" else None
    return out


def run(
    config: Config | Path | str,
    out: Path | str | None = None,
    *,
    overrides: list[str] | None = None,
    resume: bool = True,
    model_fn: ModelFn | None = None,
    head: str = "head",
    quiet: bool = False,
) -> Results:
    """Run the whole pipeline for `config` (a Config or a TOML path) and return its Results.

    `out` defaults to runs/<config file name> (runs/api for a Config object). `overrides` are
    `--set` strings ("personalize.epochs=5"). `model_fn(input_shape, num_classes) -> nn.Module`
    replaces the configured model with any module whose head is the submodule `head`.
    """
    if isinstance(config, Config):
        cfg = config if not overrides else _with_overrides(config, overrides)
        default_out = Path("runs") / "api"
    else:
        cfg = load_config(Path(config), overrides or [])
        default_out = Path("runs") / Path(config).stem
    out_dir = Path(out) if out is not None else default_out
    console = Console(stderr=True, quiet=quiet)
    run_experiment(cfg, out_dir, console=console, model_fn=model_fn, head=head, resume=resume)
    return Results.load(out_dir)


def _with_overrides(cfg: Config, overrides: list[str]) -> Config:
    return from_dict(apply_overrides(cfg.model_dump(mode="json"), overrides))
