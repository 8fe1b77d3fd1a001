"""Several seeds of one config: each a full run in DIR/seed<k>/, then mean and std per metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pftlab.errors import UserError
from pftlab.experiment.config import Config
from pftlab.experiment.runner import run_experiment
from pftlab.io import atomic_write_text, write_json


def aggregate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (ddof = 1; 0 for a single seed) of every metric of every method."""
    methods: dict[str, Any] = {}
    for method in summaries[0]["methods"]:
        metrics = dict.fromkeys(k for s in summaries for k in s["methods"][method])  # "failed" only where some did
        methods[method] = {}
        for metric in metrics:
            values = np.array([s["methods"][method].get(metric, 0) for s in summaries])
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            methods[method][metric] = {"mean": round(float(values.mean()), 4), "std": round(std, 4)}
    return {
        "benchmark": summaries[0]["benchmark"],
        "num_clients": summaries[0]["num_clients"],
        "seeds": [s["seed"] for s in summaries],
        "methods": methods,
    }


def run_seeds(
    cfg: Config, seeds: list[int], out: Path, console: Console | None = None, resume: bool = True
) -> dict[str, Any]:
    """One run per seed (finished ones reused, interrupted ones resumed), then the aggregate."""
    from pftlab.report.table import aggregate_markdown

    if len(set(seeds)) != len(seeds) or any(not 0 <= s <= 2**62 for s in seeds):
        raise UserError(f"--seeds must be distinct integers in [0, 2^62], got {seeds}")
    summaries = [
        run_experiment(cfg.model_copy(update={"seed": s}), out / f"seed{s}", console, resume=resume) for s in seeds
    ]
    agg = aggregate(summaries)
    write_json(out / "aggregate.json", agg)
    atomic_write_text(out / "aggregate.md", aggregate_markdown(agg))
    return agg
