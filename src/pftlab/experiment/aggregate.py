"""Several seeds of one config: each a full run in DIR/seed<k>/, then mean and std per metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pftlab.core.args import check_seeds
from pftlab.core.io import atomic_write_text, write_json
from pftlab.evaluate.intervals import paired_interval
from pftlab.experiment.config import Config
from pftlab.experiment.runner import run_experiment
from pftlab.report.table import aggregate_markdown

# Metrics whose absence from a summary means 0: summarize() writes `failed` (clients left out) only when one failed.
ZERO_WHEN_ABSENT = ("failed",)


def aggregate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (ddof = 1; 0 for a single seed) of every metric of every method.

    A metric that some seeds' summaries lack (e.g. a distortion mean with no finite value in one
    seed) is left out of its method's entry, never averaged with a stand-in value, and named under
    "left_out": {method: {metric: [seeds without it]}} (the key is there only when something was).
    Summaries that disagree on the methods come from different configs: a ValueError.
    """
    if not summaries:
        raise ValueError("no summaries to aggregate")
    seeds = [s["seed"] for s in summaries]
    names = list(summaries[0]["methods"])
    for s in summaries[1:]:
        if set(s["methods"]) != set(names):
            raise ValueError(
                f"seed {s['seed']} has methods {sorted(s['methods'])}, seed {seeds[0]} has {sorted(names)}: "
                "summaries of different configs cannot be aggregated"
            )
    methods: dict[str, Any] = {}
    left_out: dict[str, dict[str, list[int]]] = {}
    for method in names:
        runs = [s["methods"][method] for s in summaries]
        methods[method] = {}
        for metric in dict.fromkeys(k for r in runs for k in r):
            lacking = [seed for seed, r in zip(seeds, runs, strict=True) if metric not in r]
            if lacking and metric not in ZERO_WHEN_ABSENT:
                left_out.setdefault(method, {})[metric] = lacking
                continue
            values = np.array([r.get(metric, 0) for r in runs])
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            methods[method][metric] = {
                "mean": round(float(values.mean()), 4),
                "std": round(std, 4),
                "values": [float(v) for v in values],  # per seed, in `seeds` order: for paired differences
            }
    agg = {
        "benchmark": summaries[0]["benchmark"],
        "num_clients": summaries[0]["num_clients"],
        "seeds": seeds,
        "methods": methods,
    }
    paired = paired_over_seeds(summaries)
    if paired:
        agg["paired"] = paired
    if left_out:
        agg["left_out"] = left_out
    return agg


def paired_over_seeds(summaries: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each seed's paired difference (summary.json `paired`, e.g. "lp-ft - ft": per client, same
    sample) averaged over seeds, with a 95% t-interval over seeds (>= 2 seeds; with one, the
    seed's own interval). Only pairs and metrics every seed has."""
    if not all("paired" in s for s in summaries):
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for pair in summaries[0]["paired"]:
        for metric in summaries[0]["paired"][pair]:
            entries = [s["paired"].get(pair, {}).get(metric) for s in summaries]
            if any(e is None for e in entries):
                continue
            diffs = np.array([e["diff"] for e in entries])
            out.setdefault(pair, {})[metric] = {
                "mean": round(float(diffs.mean()), 4),
                **paired_interval(diffs, entries),
            }
    return out


def left_out_note(agg: dict[str, Any]) -> str:
    """'' or one line naming every metric the aggregate left out and the seeds that lack it."""
    parts = [
        f"{method} {metric} (missing in seed {', '.join(map(str, seeds))})"
        for method, metrics in agg.get("left_out", {}).items()
        for metric, seeds in metrics.items()
    ]
    return f"Left out, as not every seed has them: {'; '.join(parts)}.\n" if parts else ""


def run_seeds(
    cfg: Config, seeds: list[int], out: Path, console: Console | None = None, resume: bool = True
) -> dict[str, Any]:
    """One run per seed (finished ones reused, interrupted ones resumed), then the aggregate."""
    check_seeds(seeds)
    summaries = [
        run_experiment(cfg.model_copy(update={"seed": s}), out / f"seed{s}", console, resume=resume) for s in seeds
    ]
    agg = aggregate(summaries)
    write_json(out / "aggregate.json", agg)
    note = left_out_note(agg)
    atomic_write_text(out / "aggregate.md", aggregate_markdown(agg) + (f"\n{note}" if note else ""))
    if note:
        (console or Console(stderr=True)).print(note.strip(), style="yellow", markup=False, highlight=False)
    return agg
