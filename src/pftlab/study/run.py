"""Run a study: plan the cells, run the unfinished ones, aggregate, write the tables and the report."""

from __future__ import annotations

import json
import subprocess
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from pftlab.core.errors import UserError
from pftlab.core.io import write_json
from pftlab.experiment.aggregate import aggregate
from pftlab.study.decision import (
    Comparison,
    Fairness,
    by_rule,
    choice_cost,
    decide,
    fairness,
    read_clients,
    with_average,
    write_decision,
)
from pftlab.study.html import write_html
from pftlab.study.plan import Cell, Request, missing_data, plan_cells, study_cache
from pftlab.study.report import Results, write_report
from pftlab.study.sweep import SweepResult, in_order, load_finished, run_time, study_lock, sweep

__all__ = ["Request", "check_study", "run_study"]


def git_commit() -> str:
    """The commit of the pftlab checkout that wrote the report, or 'unknown'."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def check_study(req: Request) -> str:
    """What `run_study` would do, from the configs and the files already there; builds and writes nothing."""
    cells = plan_cells(req)
    skipped = {c.benchmark: note for c in cells if (note := missing_data(c.cfg))}
    finished = sum(load_finished(c) is not None for c in cells if c.benchmark not in skipped)
    todo = sum(c.benchmark not in skipped for c in cells) - finished
    lines = [
        f"study OK: {len(cells)} cells, {finished} finished (would be reused), {todo} to run; output in {req.out}/"
    ]
    lines += [f"would skip {name}: {note}" for name, note in skipped.items()]
    return "\n".join(lines)


def read_cells(cells: list[Cell], console: Console) -> SweepResult:
    """--report-only: every cell's summary.json as it is (no run key, no checksums: published cells
    written before manifests existed have none); a benchmark with a cell lacking one is skipped."""
    result = SweepResult()
    for cell in cells:
        if cell.benchmark in result.skipped:
            continue
        try:
            summary = json.loads((cell.out / "summary.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            why = f"--report-only: no readable {cell.out}/summary.json ({type(err).__name__})"
            result.skipped[cell.benchmark] = why
            result.summaries.pop(cell.benchmark, None)
            continue
        result.reused += 1
        result.summaries.setdefault(cell.benchmark, []).append(in_order(summary, cell.cfg.personalize.methods))
    console.print(f"study --report-only: read {result.reused} cells' summary.json, unverified")
    return result


@dataclass
class Decisions:
    """What report.md's Decision section is made of, per benchmark (and choice rule)."""

    decided: dict[str, list[Comparison]] = field(default_factory=dict)  # LP-FT vs every method
    costs: dict[str, list[Comparison]] = field(default_factory=dict)  # second choice rule minus first
    fair: dict[str, list[Fairness]] = field(default_factory=dict)  # who loses, per method
    notes: dict[str, str] = field(default_factory=dict)  # benchmarks without a decision, and why


def decisions(cells: list[Cell], names: list[str], rules: list[str]) -> Decisions:
    """Per benchmark (and choice rule, when there are several): LP-FT against every other method,
    paired (pftlab.study.decision), from the cells' clients.csv; per benchmark what the second rule
    changes against the first; who loses; and why a benchmark has no decision."""
    out = Decisions()
    decided, costs, notes = out.decided, out.costs, out.notes
    for name in names:
        mine = [c for c in cells if c.benchmark == name]
        absent = [c.seed for c in mine if not (c.out / "clients.csv").is_file()]
        if absent:
            notes[name] = f"no clients.csv in the cells of seed(s) {', '.join(map(str, absent))}"
            continue
        tables = {c.seed: with_average(read_clients(c.out / "clients.csv")) for c in mine}
        for rule in rules:
            key = name if len(rules) == 1 else f"{name}, {rule} choice"
            decided[key] = decide({s: by_rule(t, rules, rule) for s, t in tables.items()})
            out.fair[key] = fairness({s: by_rule(t, rules, rule) for s, t in tables.items()})
        if len(rules) > 1:
            costs[name] = choice_cost(tables, rules)
    return out


def method_seconds(cells: list[Cell], name: str) -> dict[str, float]:
    """Mean seconds per seed of each stage and method of a benchmark's cells (run.json), where recorded."""
    found: dict[str, list[float]] = {}
    for c in cells:
        if c.benchmark != name:
            continue
        try:
            seconds = json.loads((c.out / "run.json").read_text(encoding="utf-8"))["seconds"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            continue
        for stage, t in seconds.items():
            found.setdefault(stage, []).append(float(t))
    return {k: sum(v) / len(v) for k, v in found.items()}


def run_study(req: Request, console: Console | None = None) -> dict[str, Any]:
    """Run (or reuse) every cell, then write table.md, table.csv, figures/ and report.md to `req.out`."""
    console = console or Console(stderr=True)
    cells = plan_cells(req)
    if req.report_only:
        result = read_cells(cells, console)
    else:
        to_run = any(load_finished(c) is None and not missing_data(c.cfg) for c in cells)
        with study_lock(req.out) if to_run else nullcontext(), study_cache(req.out):
            result = sweep(cells, console)
    if not result.summaries:
        reasons = "; ".join(f"{n}: {why}" for n, why in result.skipped.items())
        raise UserError(f"study: every benchmark was skipped ({reasons})")
    names = list(dict.fromkeys(c.benchmark for c in cells))
    aggs = {name: aggregate(result.summaries[name]) for name in names if name in result.summaries}
    seconds = {}  # mean over the cells whose time is known
    for name in aggs:
        known = [t for c in cells if c.benchmark == name and (t := run_time(c.out)) is not None]
        seconds[name] = sum(known) / len(known) if known else 0.0
    rules: list[str] = list(cells[0].cfg.choice.rules)
    d = decisions(cells, list(aggs), rules)
    decided, costs = d.decided, d.costs
    results = Results(
        aggs,
        result.skipped,
        seconds,
        req.quick,
        git_commit(),
        req.report_only,
        decided,
        costs,
        d.notes,
        str(req.grids) if req.grids else "",
        rules,
        d.fair,
        {name: method_seconds(cells, name) for name in aggs},
        {m: len(cells[0].cfg.search_grid(m)) for m in cells[0].cfg.personalize.methods},
    )
    write_report(req.out, results)
    write_decision(req.out, {**decided, **{f"{k} (choice cost)": v for k, v in costs.items()}})
    verdicts = [
        {"benchmark": key.split(", ")[0], "rule": key.partition(", ")[2].removesuffix(" choice") or rules[0]}
        | c.to_dict()
        for key, comparisons in decided.items()
        for c in comparisons
    ]
    write_html(req.out, results, verdicts)
    record = {
        "quick": req.quick,
        "seeds": list(req.seeds),
        "methods": cells[0].cfg.personalize.methods,
        "benchmarks": list(aggs),
        "skipped": result.skipped,
        "overrides": list(req.overrides),
        "cells_reused": result.reused,
        "cells_computed": result.computed,
        **({"report_only": True} if req.report_only else {}),
        **({"grids": str(req.grids), "choice_rules": rules} if req.grids else {}),
    }
    write_json(req.out / "study.json", record)
    console.print(
        f"study: {result.reused} cells reused, {result.computed} computed, {len(result.skipped)} benchmarks skipped; "
        f"wrote {req.out}/report.md, report.html, decision.csv, table.md, table.csv, figures/"
    )
    return record
