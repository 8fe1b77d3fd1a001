"""The loss-flooding control: FT and LP-FT held at the same local training loss, compared on global accuracy.

Flooding at level b (minimise |L - b| + b) applies to every phase, so both methods stop
fitting at the same loss; if LP-FT still keeps more global accuracy, its gain is not just
weaker local fitting.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from rich.progress import Progress

from pftlab.analysis.common import Setup, analysis_phases, diverged, local_and_global, mean_rows
from pftlab.core.errors import UserError
from pftlab.core.io import write_csv, write_png
from pftlab.experiment.config import Config
from pftlab.training.loop import train
from pftlab.training.phase import Phase

METHODS = ("ft", "lp-ft")
MAX_LEVEL = 100.0  # as flood-ft's `level`: a loss level far above any cross-entropy only turns descent into ascent
MAX_LEVELS = 64


def check_levels(levels: list[float]) -> list[float]:
    if not 1 <= len(levels) <= MAX_LEVELS or any(not math.isfinite(b) or not 0 <= b <= MAX_LEVEL for b in levels):
        raise UserError(
            f"--levels must be 1 to {MAX_LEVELS} finite flooding levels in [0, {MAX_LEVEL:g}], got {levels}"
        )
    if len(set(levels)) != len(levels):
        raise UserError(f"--levels must not repeat, got {levels}")
    return levels


def flooding_jobs(cfg: Config, levels: list[float]) -> list[tuple[str, float, list[Phase]]]:
    """(method, level, phases) of every point; levels or a method table the budget cannot run are a UserError."""
    check_levels(levels)
    jobs = []
    for method in METHODS:
        base = analysis_phases(cfg, method, {}, "analyze flooding")
        jobs += [(method, level, [dataclasses.replace(p, flood=level) for p in base]) for level in levels]
    return jobs


def check_flooding(cfg: Config, levels: list[float]) -> str:
    """What `run_flooding` would train, checked without training it."""
    return f"{len(flooding_jobs(cfg, levels))} (method, level) points x {cfg.personalize.epochs} epochs"


def run_flooding(
    s: Setup, out: Path, levels: list[float], clients: int = 0, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """FT and LP-FT flooded at each level; a client whose training diverges is left out of that point's mean."""
    chosen = s.fed.clients[: clients or None]
    jobs = flooding_jobs(s.cfg, levels)
    task = progress.add_task("flooding control", total=len(jobs) * len(chosen)) if progress else None
    rows = []
    for method, level, phases in jobs:
        failed: list[str] = []
        for client in chosen:
            s.model.load_state_dict(s.weights)
            try:
                loss = train(
                    s.model, phases, client.train, s.cfg.personalize, s.cfg.seed, "personalize", client.client_id
                )
            except FloatingPointError as err:
                failed.append(str(err))
            else:
                local, global_ = local_and_global(s.model, s.pool, client.client_id)
                rows.append({"method": method, "level": level, "train_loss": loss, "local": local, "global": global_})
            if progress and task is not None:
                progress.update(task, advance=1)
        diverged(f"flooding ({method}, level {level:g})", failed, len(chosen), progress)
    table = mean_rows(rows, ("train_loss", "local", "global"), ("method", "level"))
    write_csv(out / "flooding.csv", table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k, method in enumerate(METHODS):
        pts = [r for r in table if r["method"] == method]
        ax.plot([r["train_loss"] for r in pts], [r["global"] for r in pts], marker="o", color=f"C{k}", label=method)
        for r in pts:
            ax.annotate(
                f"b={r['level']:g}",
                (r["train_loss"], r["global"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    ax.set_xlabel("local training loss reached (flooded at b)")
    ax.set_ylabel("global accuracy (%)")
    ax.set_title("global accuracy at equal local loss")
    ax.legend()
    write_png(out / "flooding.png", fig)
    return table
