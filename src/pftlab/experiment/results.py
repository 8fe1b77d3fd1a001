"""The run directory: resolved config, partition, summary.json, per-client CSV, matrices, plots.

summary.json holds only what the config and seed determine (no times, no paths), so the same
config and seed give the same bytes; run.json holds the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pftlab.core.io import atomic_write_text, write_csv, write_json
from pftlab.data.dataset import FederatedData
from pftlab.evaluate.distortion import KEYS as DISTORTION
from pftlab.evaluate.metrics import DEFINITIONS, accuracy_matrix, per_client, summarize
from pftlab.experiment.config import Config, dumps_toml
from pftlab.report.plots import plot_run


def _mean(per_client: dict[str, np.ndarray]) -> dict[str, float]:
    """Client means of the distortion measures (features rounded to 6 digits)."""
    return {k: round(float(np.nanmean(v)), 6) for k, v in per_client.items() if not np.isnan(v).all()}


def write_config(out: Path, cfg: Config) -> None:
    atomic_write_text(out / "config.toml", dumps_toml(cfg))


def write_results(
    out: Path,
    cfg: Config,
    fed: FederatedData,
    correct: dict[str, np.ndarray],
    sizes: np.ndarray,
    run_info: dict[str, Any],
    searched: dict[str, list[dict[str, Any]]] | None = None,
    distortions: dict[str, dict[str, np.ndarray]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every file of the run directory; `extra` goes into summary.json as given (global-stage counts, failures)."""
    write_config(out, cfg)
    write_json(out / "partition.json", {"hash": fed.partition_hash, "clients": fed.partition})
    distortions = distortions or {}
    columns = ["method", "client", "domain", "n_train", "n_test", "local", "global", "global_balanced", "worst"]
    rows: list[list[Any]] = []
    for method, hits in correct.items():
        pc = per_client(hits, sizes)
        for i, c in enumerate(fed.clients):  # row i of the matrices; c.client_id names it (a subset keeps its ids)
            dist = distortions.get(method, {})
            rows.append(
                [method, c.client_id, c.domain, len(c.train), len(c.test)]
                + [round(float(pc[k][i]), 4) for k in ("local", "global", "global_balanced", "worst")]
                + [round(float(dist[k][i]), 6) if k in dist else "" for k in DISTORTION]
            )
        acc = accuracy_matrix(hits, sizes).round(4)
        names = [f"client{c.client_id}" for c in fed.clients]
        body = [[name, *r] for name, r in zip(names, acc.tolist(), strict=True)]
        write_csv(out / "matrices" / f"{method}.csv", body, header=["model \\ test", *names])
    write_csv(out / "clients.csv", rows, header=[*columns, *DISTORTION])
    summary = {
        "benchmark": fed.name,
        "seed": cfg.seed,
        "num_clients": fed.num_clients,
        "partition_hash": fed.partition_hash,
        "test_sizes": sizes.tolist(),
        "methods": {m: {**summarize(hits, sizes), **_mean(distortions.get(m, {}))} for m, hits in correct.items()},
        **(extra or {}),
        "definitions": DEFINITIONS,
    }
    write_json(out / "run.json", run_info)
    if searched:  # hyper-parameters each client chose on its own validation split
        write_json(out / "search.json", searched)
    plot_run(out, correct, sizes, fed)
    write_json(out / "summary.json", summary)  # last: a run directory with summary.json is complete
    return summary
