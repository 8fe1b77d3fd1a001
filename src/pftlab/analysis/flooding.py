"""The loss-flooding control: FT and LP-FT held at the same local training loss, compared on global accuracy.

Flooding at level b (minimise |L - b| + b) applies to every phase, so both methods stop
fitting at the same loss; if LP-FT still keeps more global accuracy, its gain is not just
weaker local fitting.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich.progress import Progress

from pftlab.analysis.common import Setup, local_and_global, mean_rows
from pftlab.core.io import write_csv, write_png
from pftlab.personalize import recipe
from pftlab.training.loop import train


def run_flooding(
    s: Setup, out: Path, levels: list[float], clients: int = 0, progress: Progress | None = None
) -> list[dict[str, Any]]:
    chosen = s.fed.clients[: clients or None]
    task = progress.add_task("flooding control", total=2 * len(levels) * len(chosen)) if progress else None
    rows = []
    for method in ("ft", "lp-ft"):
        spec = recipe(method)
        base = spec.recipe(s.cfg.method_params(method), s.cfg.personalize)
        for level in levels:
            phases = [dataclasses.replace(p, flood=level) for p in base]
            for client in chosen:
                s.model.load_state_dict(s.weights)
                loss = train(
                    s.model, phases, client.train, s.cfg.personalize, s.cfg.seed, "personalize", client.client_id
                )
                local, global_ = local_and_global(s.model, s.pool, client.client_id)
                rows.append({"method": method, "level": level, "train_loss": loss, "local": local, "global": global_})
                if progress and task is not None:
                    progress.update(task, advance=1)
    table = mean_rows(rows, ("train_loss", "local", "global"), ("method", "level"))
    write_csv(out / "flooding.csv", table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k, method in enumerate(("ft", "lp-ft")):
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
