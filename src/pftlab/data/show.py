"""What `pftlab data list` and `pftlab data show` print and draw: benchmarks, and one federation client by client."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich import box
from rich.table import Table

from pftlab.core.io import write_png
from pftlab.data.benchmarks import BENCHMARKS
from pftlab.data.dataset import FederatedData
from pftlab.data.fetch import plan
from pftlab.data.sources.catalog import SOURCES
from pftlab.data.sources.files import data_root, present


def files_present(files: tuple[str, ...]) -> str:
    if not files:
        return "embedded"
    missing = [f for f in files if not present(f)]
    return "present" if not missing else f"missing {len(missing)} of {len(files)}"


def human_size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.1f} kB"


def fetchable(name: str, files: tuple[str, ...]) -> str:
    """What `pftlab data fetch NAME` would download (its size), or what it cannot."""
    if not files:
        return ""
    work = plan([name])
    size = human_size(work.size)
    if work.manual:
        return f"{size} + by hand: {', '.join(work.manual)}" if work.remotes else "by hand"
    return size


def benchmarks_table() -> Table:
    table = Table(title=f"benchmarks (data root: {data_root()})", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("name", "origin", "shift", "default size", "quick size", "files", "fetch"):
        table.add_column(col, no_wrap=col == "name", overflow="fold" if col == "origin" else "ellipsis")
    for name, b in BENCHMARKS.items():
        size, quick = b.size(b.Params()), b.size(b.Params(**b.quick))
        table.add_row(
            name, BENCHMARKS.origin(name), b.shift, size, quick, files_present(b.files), fetchable(name, b.files)
        )
    return table


def sources_table() -> Table:
    """What `pftlab data fetch` knows besides benchmark names: each source, its licence, size and presence."""
    table = Table(title="sources 'pftlab data fetch' downloads", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("name", "what", "licence", "size", "files"):
        table.add_column(col, no_wrap=col == "name")
    for name, source in SOURCES.items():
        size = human_size(sum(r.size for r in source.files))
        table.add_row(name, source.title, source.licence, size, files_present(tuple(r.path for r in source.files)))
    return table


def class_names(fed: FederatedData) -> list[str]:
    """The benchmark's class names where its source names them (meta["classes"]), else the indices."""
    names = fed.clients[0].train.meta.get("classes") if fed.clients else None
    if isinstance(names, list | tuple) and len(names) == fed.num_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(fed.num_classes)]


def federation_table(fed: FederatedData, max_rows: int = 60) -> Table:
    names = class_names(fed)
    shown = ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
    table = Table(
        title=f"{fed.name}: {fed.num_clients} clients, {fed.num_classes} classes, input {fed.input_shape}"
        f"\nclasses in order: {shown}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col in ("client", "domain", "train", "val", "test", "train labels (count per class)"):
        table.add_column(col, justify="right" if col in ("client", "train", "val", "test") else "left")
    for c in fed.clients[:max_rows]:
        counts = " ".join(str(int(n)) for n in c.train.label_counts())
        table.add_row(str(c.client_id), c.domain, str(len(c.train)), str(len(c.val)), str(len(c.test)), counts)
    if fed.num_clients > max_rows:
        table.add_row("...", f"{fed.num_clients - max_rows} more clients", "", "", "", "")
    return table


def label_heatmap(fed: FederatedData, path: Path) -> None:
    """Clients x classes heat map of training-label counts, with each client's domain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.stack([c.train.label_counts() for c in fed.clients])
    height = min(2 + 0.22 * fed.num_clients, 40)
    fig, ax = plt.subplots(figsize=(2 + 0.45 * fed.num_classes, height))
    im = ax.imshow(counts, aspect="auto", cmap="magma_r", interpolation="nearest")
    ax.set_xlabel("class")
    ax.set_ylabel("client")
    ax.set_xticks(range(fed.num_classes))
    if fed.num_clients <= 60:
        # a user's client or domain name is text, never mathtext: '$' is escaped
        names = [f"{c.client_id} {c.domain}".strip().replace("$", r"\$") for c in fed.clients]
        ax.set_yticks(range(fed.num_clients), names, fontsize=7)
    ax.set_title(f"{fed.name}: training samples per client and class")
    fig.colorbar(im, ax=ax, label="samples")
    write_png(path, fig, dpi=110)
