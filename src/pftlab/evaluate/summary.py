"""From one method's scores (full or sampled) to what a run reports: per-client values, the
summary metrics, the accuracy matrix it writes, and the stated error of every metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pftlab.evaluate.intervals import method_intervals, paired_difference
from pftlab.evaluate.metrics import accuracy_matrix, per_client, summarize
from pftlab.evaluate.sampled import Estimate, Sample, SampledScores, estimates

PAIRED_AGAINST = "ft"  # paired differences are reported as each method minus plain fine-tuning


@dataclass(frozen=True)
class MethodResult:
    values: dict[str, np.ndarray]  # per-client metrics (NaN: failed, or not defined for the client)
    summary: dict[str, float]  # client means, as summary.json holds them
    matrix: np.ndarray  # accuracy %: N x N (full), or N x K on the sampled clients (sampled)
    estimates: dict[str, Estimate] | None  # sampled mode: what each metric's sampling error needs


def method_result(
    scores: np.ndarray | SampledScores, sizes: np.ndarray, domains: np.ndarray, sample: Sample | None, digits: int = 4
) -> MethodResult:
    if sample is None:
        assert isinstance(scores, np.ndarray)
        values = per_client(scores, sizes, domains)
        return MethodResult(values, summarize(scores, sizes, digits, domains), accuracy_matrix(scores, sizes), None)
    assert isinstance(scores, SampledScores)
    values, ests = estimates(scores, sample)
    if not scores.ok.any():
        raise ValueError("every client failed: there is nothing to summarize")
    out = {k: e.value for k, e in ests.items()}
    out["c_std"] = float(values["local"][scores.ok].std())
    out["local_min"] = float(values["local"][scores.ok].min())  # exact: local is computed on every own image
    out["global_std"] = float(np.nanstd(values["global_balanced"][scores.ok]))
    rounded = {k: round(v, digits) for k, v in out.items()}
    if not scores.ok.all():
        rounded["failed"] = int((~scores.ok).sum())
    matrix = 100.0 * scores.client_hits / sizes[sample.clients][None, :]
    matrix[~scores.ok] = np.nan
    return MethodResult(values, dict(sorted(rounded.items())), matrix, ests)


def stated_errors(
    results: dict[str, MethodResult],
    distortions: dict[str, dict[str, np.ndarray]],
    weights: np.ndarray,
    sample: Sample | None,
    summaries: dict[str, dict[str, float]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per method, every summary metric's stated error; and each method minus FT, paired per client."""
    fraction = sample.fraction if sample is not None else 1.0
    intervals = {
        m: method_intervals(summaries[m], {**r.values, **distortions.get(m, {})}, weights, r.estimates, fraction)
        for m, r in results.items()
    }
    paired: dict[str, Any] = {}
    if PAIRED_AGAINST in results:
        base = results[PAIRED_AGAINST]
        for m, r in results.items():
            if m != PAIRED_AGAINST:
                paired[f"{m} - {PAIRED_AGAINST}"] = paired_difference(
                    r.values, base.values, weights, r.estimates, base.estimates, fraction
                )
    return intervals, paired


__all__ = ["PAIRED_AGAINST", "MethodResult", "method_result", "stated_errors"]
