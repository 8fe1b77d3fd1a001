"""Run the cells that are not finished; reuse the ones that are.

A cell is finished when its run directory verifies: its manifest.json (written last by
run_experiment) belongs to the cell's run key (config, partition, model identity, thread count
and the rest of the compute setting; progress bars aside) and the files the study reads
(summary.json, run.json, config.toml) match their sha256. An edited number or a cell of another
config is recomputed, never carried into the table. Before a cell is (re)computed its
summary.json is removed, so a run stopped half-way is never mistaken for a finished one. A study
that has cells to compute holds DIR/.lock, so a second one on the same DIR stops at once instead
of computing the same cells.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from pftlab.core.errors import UserError
from pftlab.evaluate.choice import SEPARATOR
from pftlab.experiment import runner
from pftlab.study.plan import Cell, missing_data


@dataclass
class SweepResult:
    """Summaries per benchmark (in seed order), benchmarks skipped with why, and what was reused."""

    summaries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    reused: int = 0
    computed: int = 0


@contextmanager
def study_lock(out: Path) -> Iterator[None]:
    """Hold DIR/.lock while cells are computed; the OS drops it when the process ends, however it ends."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise UserError(
                f"study: {out} is being computed by {holder}; wait for it to end or use another --out "
                "(a run whose cells are all finished only writes the report and needs no lock)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pftlab study pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)


STUDY_READS = ("summary.json", "run.json", "config.toml", "clients.csv")  # clients.csv: the paired decision


def load_finished(cell: Cell) -> dict[str, Any] | None:
    """The cell's summary if it finished with this config and verifies, else None (see the module doc)."""
    if missing_data(cell.cfg):
        return None
    try:
        return runner.finished_run(cell.out, cell.cfg, required=STUDY_READS)
    except UserError:  # data that cannot be built: the sweep skips the benchmark with the reason
        return None


def in_order(summary: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """The summary with its methods in the study's order, the global model first (summary.json sorts keys)."""
    order = ["global-model", *methods]

    def rank(m: str) -> tuple[int, int]:  # a method's other choice rules (<method>@<rule>) follow it
        base = m.split(SEPARATOR)[0]
        return (order.index(base) if base in order else len(order), SEPARATOR in m)

    ranked = sorted(summary["methods"], key=rank)
    return {**summary, "methods": {m: summary["methods"][m] for m in ranked}}


def run_time(run_dir: Path) -> float | None:
    """Seconds the run's stages took (from run.json, results reused after an interruption included);
    None if unknown, or if it reused results whose run did not record their time."""
    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if info.get("resumed", {}).get("seconds_unknown"):
            return None
        return float(sum(info["seconds"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def sweep(cells: list[Cell], console: Console) -> SweepResult:
    """Every cell, benchmark by benchmark; a benchmark whose data is missing or fails is skipped with a note."""

    result = SweepResult()
    finished = {(c.benchmark, c.seed): load_finished(c) for c in cells}
    reusable = sum(s is not None for s in finished.values())
    console.print(f"study: {len(cells)} cells, {reusable} finished earlier (reused), {len(cells) - reusable} to run")
    for k, cell in enumerate(cells, 1):
        head = f"[{k}/{len(cells)}] {cell.benchmark} seed {cell.seed}"
        if cell.benchmark in result.skipped:
            continue
        note = missing_data(cell.cfg)
        if note:
            result.skipped[cell.benchmark] = note
            console.print(f"{head}: skipped, {note}")
            continue
        summary = finished[(cell.benchmark, cell.seed)]
        if summary is not None:
            result.reused += 1
            console.print(f"{head}: reused {cell.out}")
        else:
            (cell.out / "summary.json").unlink(missing_ok=True)
            console.print(f"{head}: running")
            t0 = time.perf_counter()
            try:
                # looked up at call time, so a test can stand in for it (tests/study: an interrupted sweep)
                summary = runner.run_experiment(cell.cfg, cell.out, console)
            except UserError as err:
                result.skipped[cell.benchmark] = str(err)
                result.summaries.pop(cell.benchmark, None)
                console.print(f"{head}: skipped, {err}")
                continue
            result.computed += 1
            console.print(f"{head}: done in {time.perf_counter() - t0:.0f} s")
        result.summaries.setdefault(cell.benchmark, []).append(in_order(summary, cell.cfg.personalize.methods))
    return result
