"""Plots of one run: local vs global accuracy per method, and the cross-client matrices."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pftlab.core.io import write_png
from pftlab.data.dataset import FederatedData
from pftlab.evaluate.metrics import accuracy_matrix, per_client
from pftlab.report.text import plain

__all__ = ["local_vs_global", "matrices", "plain", "plot_run"]


def local_vs_global(correct: dict[str, np.ndarray], sizes: np.ndarray, path: Path) -> None:
    """One faint point per client and one large point (the client mean) per method."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for k, (method, hits) in enumerate(correct.items()):
        pc = per_client(hits, sizes)
        color = f"C{k}"
        ax.scatter(pc["local"], pc["global"], s=14, alpha=0.35, color=color)
        ax.scatter(pc["local"].mean(), pc["global"].mean(), s=90, color=color, edgecolor="black", label=plain(method))
    lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
    ax.plot([lo, 100], [lo, 100], ls=":", color="grey", lw=1)
    ax.set_xlabel("local accuracy (%): own test set")
    ax.set_ylabel("global accuracy (%): other clients' test sets")
    ax.set_title("personalization: local vs global (small = one client)")
    ax.legend(loc="lower right", fontsize=8)
    write_png(path, fig)


def matrices(correct: dict[str, np.ndarray], sizes: np.ndarray, fed: FederatedData, path: Path) -> None:
    """A[i, j] heat maps side by side: rows are models, columns test sets."""
    n = len(correct)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 0.8, 3.4), squeeze=False)
    labels = [plain(f"{c.client_id}" + (f" {c.domain}" if c.domain else "")) for c in fed.clients]
    im = None
    for k, (ax, (method, hits)) in enumerate(zip(axes[0], correct.items(), strict=True)):
        im = ax.imshow(accuracy_matrix(hits, sizes), vmin=0, vmax=100, cmap="viridis")
        ax.set_title(plain(method), fontsize=10)
        ax.set_xlabel("test set of client j", fontsize=8)
        if len(labels) <= 20:
            ax.set_xticks(range(len(labels)), [lab.split()[0] for lab in labels], fontsize=6)
            ax.set_yticks(range(len(labels)), labels if k == 0 else [], fontsize=6)
        if k == 0:
            ax.set_ylabel("model of client i", fontsize=8)
    assert im is not None  # correct holds at least the global model
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy %")
    write_png(path, fig)


def plot_run(out: Path, correct: dict[str, np.ndarray], sizes: np.ndarray, fed: FederatedData) -> None:
    local_vs_global(correct, sizes, out / "local_vs_global.png")
    matrices(correct, sizes, fed, out / "matrices.png")
