"""The reproduction study: every benchmark x every method x seeds, resumable, ending in Table 2 and a report.

plan: which cells (one run_experiment per benchmark and seed) with which configs;
sweep: run the unfinished cells, reuse the finished ones; report: tables, figures, report.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from rich.console import Console

from pftlab.errors import UserError
from pftlab.experiment.aggregate import aggregate
from pftlab.io import write_json
from pftlab.study.plan import (
    CONFIGS,
    benchmark_configs,
    check_methods,
    check_seeds,
    plan_cells,
    study_cache,
)
from pftlab.study.report import Results, write_report
from pftlab.study.sweep import run_time, sweep

__all__ = ["run_study"]


def git_commit() -> str:
    """The commit of the pftlab checkout that wrote the report, or 'unknown'."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def run_study(
    out: Path,
    quick: bool = False,
    seeds: list[int] = (0, 1, 2),  # type: ignore[assignment]
    benchmarks: list[str] | None = None,
    methods: list[str] | None = None,
    overrides: list[str] = (),  # type: ignore[assignment]
    progress: bool = True,
    configs: Path = CONFIGS,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run (or reuse) every cell, then write table.md, table.csv, figures/ and report.md to `out`."""
    console = console or Console(stderr=True)
    seeds = check_seeds(list(seeds))
    methods = check_methods(methods)
    raw = benchmark_configs(configs, benchmarks)
    cells = plan_cells(out, raw, seeds, methods, quick, list(overrides), progress)
    with study_cache(out):
        result = sweep(cells, console)
    if not result.summaries:
        reasons = "; ".join(f"{n}: {why}" for n, why in result.skipped.items())
        raise UserError(f"study: every benchmark was skipped ({reasons})")
    aggs = {name: aggregate(result.summaries[name]) for name in raw if name in result.summaries}
    seconds = {name: sum(run_time(c.out) for c in cells if c.benchmark == name) / len(seeds) for name in aggs}
    write_report(out, Results(aggs, result.skipped, seconds, quick, git_commit()))
    record = {
        "quick": quick,
        "seeds": seeds,
        "methods": methods,
        "benchmarks": list(aggs),
        "skipped": result.skipped,
        "overrides": list(overrides),
        "cells_reused": result.reused,
        "cells_computed": result.computed,
    }
    write_json(out / "study.json", record)
    console.print(
        f"study: {result.reused} cells reused, {result.computed} computed, {len(result.skipped)} benchmarks skipped; "
        f"wrote {out}/report.md, table.md, table.csv, figures/"
    )
    return record
