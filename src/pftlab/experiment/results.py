"""The run directory: resolved config, partition, summary.json, per-client CSV, matrices, plots.

summary.json holds only what the config and seed determine (no times, no paths), so the same
config and seed give the same bytes; run.json holds the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pftlab.core.io import atomic_write_text, write_csv, write_json
from pftlab.data.dataset import FederatedData
from pftlab.evaluate.distortion import KEYS as DISTORTION
from pftlab.evaluate.intervals import resample_weights
from pftlab.evaluate.metrics import DEFINITIONS, DOMAIN_SPLIT
from pftlab.evaluate.sampled import Sample
from pftlab.evaluate.scoring import Scores, domain_numbers
from pftlab.evaluate.summary import method_result, stated_errors
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
    correct: Mapping[str, Scores],
    sizes: np.ndarray,
    run_info: dict[str, Any],
    searched: dict[str, list[dict[str, Any]]] | None = None,
    distortions: dict[str, dict[str, np.ndarray]] | None = None,
    extra: dict[str, Any] | None = None,
    sample: Sample | None = None,
) -> dict[str, Any]:
    """Every file of the run directory; `extra` goes into summary.json as given (global-stage counts, failures).

    `correct` holds each method's N x N hit matrix, or (with `sample`) its sampled scores: then
    the metrics are estimates, matrices/ holds the sampled clients' columns, and nothing of size
    N x N is made.
    """
    write_config(out, cfg)
    write_json(out / "partition.json", {"hash": fed.partition_hash, "clients": fed.partition})
    distortions = distortions or {}
    domains = domain_numbers(fed)
    results = {m: method_result(hits, sizes, domains, sample) for m, hits in correct.items()}
    split = [k for k in DOMAIN_SPLIT if any(k in r.values for r in results.values())]
    metrics = ["local", "global", "global_balanced", "worst", *split]
    columns = ["method", "client", "domain", "n_train", "n_test", *metrics]
    rows: list[list[Any]] = []
    tested = list(range(fed.num_clients)) if sample is None else sample.clients.tolist()
    names = [f"client{fed.clients[j].client_id}" for j in tested]
    for method, result in results.items():
        for i, c in enumerate(fed.clients):  # row i of the matrices; c.client_id names it (a subset keeps its ids)
            dist = distortions.get(method, {})
            rows.append(
                [method, c.client_id, c.domain, len(c.train), len(c.test)]
                + [round(float(result.values[k][i]), 4) if k in result.values else "" for k in metrics]
                + [round(float(dist[k][i]), 6) if k in dist else "" for k in DISTORTION]
            )
        body = [[f"client{c.client_id}", *r] for c, r in zip(fed.clients, result.matrix.round(4).tolist(), strict=True)]
        write_csv(out / "matrices" / f"{method}.csv", body, header=["model \\ test", *names])
    write_csv(out / "clients.csv", rows, header=[*columns, *DISTORTION])
    means = {m: {**r.summary, **_mean(distortions.get(m, {}))} for m, r in results.items()}
    weights = resample_weights(fed.num_clients, cfg.evaluate.bootstrap, cfg.seed)
    intervals, paired = stated_errors(results, distortions, weights, sample, means)
    summary = {
        "benchmark": fed.name,
        "seed": cfg.seed,
        "num_clients": fed.num_clients,
        "partition_hash": fed.partition_hash,
        "test_sizes": sizes.tolist(),
        "evaluation": _evaluation(cfg, sample, int(sizes.sum())),
        "methods": means,
        "intervals": intervals,
        **({"paired": paired} if paired else {}),
        **(extra or {}),
        "definitions": DEFINITIONS,
    }
    write_json(out / "run.json", run_info)
    if searched:  # hyper-parameters each client chose on its own validation split
        write_json(out / "search.json", searched)
    plot_run(out, {m: r.values for m, r in results.items()}, {m: r.matrix for m, r in results.items()}, fed, tested)
    write_json(out / "summary.json", summary)  # last: a run directory with summary.json is complete
    return summary


def _evaluation(cfg: Config, sample: Sample | None, pool: int) -> dict[str, Any]:
    """How the run was scored: the mode it resolved to and, sampled, the sample's sizes and clients."""
    out: dict[str, Any] = {"mode": "full" if sample is None else "sampled", "configured": cfg.evaluate.mode}
    out["bootstrap_resamples"] = cfg.evaluate.bootstrap
    if sample is not None:
        out |= {
            "sample_images": len(sample.images),
            "pool_images": pool,
            "sample_clients": sample.clients.tolist(),
        }
    return out
