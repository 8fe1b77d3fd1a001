"""Feature distortion against the drop in global accuracy: one point per client and method, from a run directory."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from pftlab.core.errors import UserError
from pftlab.core.io import write_csv, write_png
from pftlab.report.text import plain


def read_clients(run_dir: Path) -> list[dict[str, Any]]:
    """The (method, client, distortion, global drop) points of RUN_DIR/clients.csv; a bad file is a UserError."""
    path = run_dir / "clients.csv"
    try:
        if not path.is_file():
            raise UserError(f"{path} not found: give a run directory written by 'pftlab run'")
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError, csv.Error) as err:  # ValueError: a NUL in the path, undecodable bytes
        if isinstance(err, UserError):
            raise
        raise UserError(f"cannot read {path}: {str(err).splitlines()[0]}") from None
    if not rows or "distortion_own" not in rows[0]:
        raise UserError(f"{path} has no distortion columns: rerun it with this version of pftlab")
    try:
        base = {r["client"]: float(r["global"]) for r in rows if r["method"] == "global-model"}
        points = [
            {
                "method": r["method"],
                "client": r["client"],
                "distortion_own": float(r["distortion_own"]),
                "global_drop": round(base[r["client"]] - float(r["global"]), 4),
            }
            for r in rows
            if r["method"] != "global-model"
        ]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path} is malformed (a missing cell, client or number): rerun 'pftlab run'") from None
    if not points:
        raise UserError(f"{path} has no personalized methods, only the global model: nothing to compare")
    return points


def run_distortion(run_dir: Path, out: Path) -> dict[str, float]:
    """Reads RUN_DIR/clients.csv; writes distortion.csv and distortion.png; returns Spearman rho per method."""
    points = read_clients(run_dir)
    write_csv(out / "distortion.csv", points)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    rho = {}
    for k, method in enumerate(dict.fromkeys(p["method"] for p in points)):
        pts = [p for p in points if p["method"] == method]
        x, y = np.array([p["distortion_own"] for p in pts]), np.array([p["global_drop"] for p in pts])
        ax.scatter(x, y, s=18, color=f"C{k}", label=plain(method), alpha=0.8)
    x = np.array([p["distortion_own"] for p in points])
    y = np.array([p["global_drop"] for p in points])
    moving = x > 0
    if moving.sum() > 2:
        rho["all methods that move features"] = round(float(spearmanr(x[moving], y[moving]).statistic), 4)
    ax.set_xlabel("feature distortion on own test data (mean L2)")
    ax.set_ylabel("drop in global accuracy vs the global model (points)")
    ax.set_title("distortion vs global drop (one point per client and method)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.legend(fontsize=7)
    write_png(out / "distortion.png", fig)
    return rho
