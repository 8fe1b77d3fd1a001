"""Plots of one run: local vs global accuracy per method, and the cross-client matrices."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pftlab.core.io import write_png
from pftlab.data.dataset import FederatedData
from pftlab.report.text import plain

__all__ = ["local_vs_global", "matrices", "plain", "plot_run"]


def local_vs_global(values: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    """One faint point per client and one large point (the client mean) per method."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for k, (method, pc) in enumerate(values.items()):
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


def matrices(accuracy: dict[str, np.ndarray], fed: FederatedData, tested: Sequence[int], path: Path) -> None:
    """A[i, j] heat maps side by side: rows are models, columns test sets (the sampled clients' in sampled mode)."""
    n = len(accuracy)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 0.8, 3.4), squeeze=False)
    labels = [plain(f"{c.client_id}" + (f" {c.domain}" if c.domain else "")) for c in fed.clients]
    columns = [labels[j].split()[0] for j in tested]
    im = None
    for k, (ax, (method, acc)) in enumerate(zip(axes[0], accuracy.items(), strict=True)):
        im = ax.imshow(acc, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set_title(plain(method), fontsize=10)
        sampled = len(columns) < len(labels)
        ax.set_xlabel("test set of client j" + (" (sampled clients)" if sampled else ""), fontsize=8)
        if len(labels) <= 20:
            ax.set_xticks(range(len(columns)), columns, fontsize=6)
            ax.set_yticks(range(len(labels)), labels if k == 0 else [], fontsize=6)
        if k == 0:
            ax.set_ylabel("model of client i", fontsize=8)
    assert im is not None  # correct holds at least the global model
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy %")
    write_png(path, fig)


def plot_run(
    out: Path,
    values: dict[str, dict[str, np.ndarray]],
    accuracy: dict[str, np.ndarray],
    fed: FederatedData,
    tested: Sequence[int],
) -> None:
    """`values`: per method, per-client metrics; `accuracy`: per method, A[i, j] for j in `tested`."""
    local_vs_global(values, out / "local_vs_global.png")
    matrices(accuracy, fed, tested, out / "matrices.png")
