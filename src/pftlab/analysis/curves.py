"""Local and global accuracy against fine-tuning epoch, per method and hyper-parameter.

The study's first observation: FT's local accuracy rises while its global accuracy falls,
whatever the learning rate, sparsity or proximal strength; LP-FT is the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import Progress

from pftlab.analysis.common import Setup, analysis_phases, diverged, local_and_global, mean_rows
from pftlab.core.io import write_csv, write_png
from pftlab.experiment.config import Config
from pftlab.training.loop import train
from pftlab.training.phase import Phase

VARIANTS: dict[str, list[tuple[str, str, dict[str, float]]]] = {
    "FT (learning rate)": [(f"lr={lr}", "ft", {"lr": lr}) for lr in (0.003, 0.01, 0.03)],
    "Sparse FT (sparsity)": [(f"rate={r}", "sparse-ft", {"sparsity": r}) for r in (0.5, 0.9, 0.99)],
    "Proximal FT (mu)": [(f"mu={mu}", "proximal-ft", {"mu": mu}) for mu in (0.01, 0.1, 1.0)],
}
REFERENCE: tuple[str, str, dict[str, float]] = ("LP-FT", "lp-ft", {})


def curve_jobs(cfg: Config) -> list[tuple[str, str, list[Phase]]]:
    """(family, variant, phases) of every curve; a variant the config's tables or budget cannot run is a UserError."""
    jobs = [(family, *v) for family, vs in VARIANTS.items() for v in vs] + [("reference", *REFERENCE)]
    return [
        (family, label, analysis_phases(cfg, method, overrides, f"analyze curves ({family}: {label})"))
        for family, label, method, overrides in jobs
    ]


def check_curves(cfg: Config) -> str:
    """What `run_curves` would train, checked without training it: every variant's parameters and budget."""
    jobs = curve_jobs(cfg)
    return f"{len(jobs)} variants x {cfg.personalize.epochs} epochs"


def run_curves(s: Setup, out: Path, clients: int = 0, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Per variant and epoch, client-averaged local and global accuracy; writes curves.csv and curves.png.

    A client whose training diverges (a non-finite loss, e.g. at a huge learning rate) is left out of that
    variant's mean and named in a warning; a variant where every client diverges is a UserError.
    """
    chosen = s.fed.clients[: clients or None]
    jobs = curve_jobs(s.cfg)
    task = progress.add_task("accuracy vs epoch", total=len(jobs) * len(chosen)) if progress else None
    rows: list[dict[str, Any]] = []
    for family, label, phases in jobs:
        failed: list[str] = []
        for client in chosen:
            s.model.load_state_dict(s.weights)
            done = len(rows)

            def record(
                epoch: int, loss: float, cid: int = client.client_id, tag: tuple[str, str] = (family, label)
            ) -> None:
                local, global_ = local_and_global(s.model, s.pool, cid)
                rows.append(
                    {
                        "family": tag[0],
                        "variant": tag[1],
                        "epoch": epoch,
                        "client": cid,
                        "local": local,
                        "global": global_,
                        "train_loss": loss,
                    }
                )

            record(0, float("nan"))
            try:
                train(
                    s.model,
                    phases,
                    client.train,
                    s.cfg.personalize,
                    s.cfg.seed,
                    "personalize",
                    client.client_id,
                    on_epoch=record,
                )
            except FloatingPointError as err:
                del rows[done:]  # a diverged client's epochs stay out of the means
                failed.append(str(err))
            if progress and task is not None:
                progress.update(task, advance=1)
        diverged(f"{family}: {label}", failed, len(chosen), progress)
    curves = mean_rows(rows, ("local", "global"), ("family", "variant", "epoch"))
    write_csv(out / "curves.csv", curves)
    plot_curves(curves, out / "curves.png")
    return curves


def plot_curves(curves: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(VARIANTS)
    fig, axes = plt.subplots(len(families), 2, figsize=(10, 3.2 * len(families)), sharex=True, squeeze=False)
    ref = [r for r in curves if r["family"] == "reference"]
    for row, family in enumerate(families):
        for col, metric in enumerate(("local", "global")):
            ax = axes[row][col]
            for k, (label, _, _) in enumerate(VARIANTS[family]):
                pts = [r for r in curves if r["variant"] == label and r["family"] == family]
                ax.plot(
                    [r["epoch"] for r in pts], [r[metric] for r in pts], marker="o", ms=3, color=f"C{k}", label=label
                )
            ax.plot([r["epoch"] for r in ref], [r[metric] for r in ref], ls="--", color="black", label="LP-FT")
            ax.set_title(f"{family}: {metric} accuracy", fontsize=10)
            ax.set_ylabel(f"{metric} accuracy (%)")
            ax.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("fine-tuning epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    write_png(path, fig)
