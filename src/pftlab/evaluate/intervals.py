"""Stated error for every metric: across clients (a bootstrap over clients), and from sampling.

Each summary metric is a mean (or std) over clients. Two things make it uncertain:
- **which clients**: another federation of clients like these would give another mean. A
  bootstrap over clients (resampling clients with replacement, the same resamples for every method
  of a run, so differences between methods are paired) gives `se_clients`, in both modes.
- **which images** (sampled mode only): the estimate's sampling error against the full matrix of
  these very models, `se_sampling` (pftlab.evaluate.sampled), with the one-sided `gap` of worst.

`se` combines the two (independent sources, so variances add) and `ci95` is the normal interval,
widened below by the gap. A paired difference between two methods (per client, same sample, same
resamples) gets the same treatment.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from pftlab.evaluate.sampled import Z95, Estimate, successive_difference_se

# Sampled mode computes these on the client's whole own test set (c_std from the exact local accuracies).
EXACT_WHEN_SAMPLED = ("c_std", "local_min", "distortion_own", "cka_own")
# Statistics over clients other than the mean: (per-client column, statistic) for the bootstrap.
SPREAD = {"c_std": ("local", "std"), "global_std": ("global_balanced", "std"), "local_min": ("local", "min")}
UNBOUNDED = ("distortion_own", "distortion_others")  # not accuracies: no 0-100 clip (CKA lies in 0-1 anyway)


def resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) counts: how often each client is drawn in each bootstrap resample."""
    rng = np.random.default_rng([seed, 0xB0075])
    draws = rng.integers(0, n, size=(resamples, n))
    return np.stack([np.bincount(row, minlength=n) for row in draws]).astype(np.float64)


def bootstrap_se(values: np.ndarray, weights: np.ndarray, statistic: str = "mean") -> float:
    """Std over resamples of the clients' mean (or population std, or min) of `values` (NaN ones left out)."""
    defined = ~np.isnan(values)
    if defined.sum() < 2:
        return 0.0
    w, v = weights[:, defined], values[defined]
    total = w.sum(1)
    keep = total > 0
    w, total = w[keep], total[keep]
    mean = w @ v / total
    if statistic == "std":
        mean = np.sqrt(np.maximum(w @ (v * v) / total - mean * mean, 0.0))
    elif statistic == "min":
        mean = np.where(w > 0, v[None, :], np.inf).min(1)
    return float(mean.std(ddof=1)) if len(mean) > 1 else 0.0


def stated(
    value: float, se_clients: float, sampling: tuple[float, float] | None, bounds: tuple[float, float] | None = None
) -> dict[str, Any]:
    """One metric's entry: se and ci95 in total, and each part; `sampling` = (se, gap) or None
    (exact); intervals are clipped to `bounds` (0-100 for accuracies)."""
    se_s, gap = sampling or (0.0, 0.0)
    se = math.hypot(se_clients, se_s)
    lo, hi = bounds or (-math.inf, math.inf)

    def clip(a: float, b: float) -> list[float]:
        return [round(min(max(a, lo), hi), 4), round(min(max(b, lo), hi), 4)]

    entry: dict[str, Any] = {
        "se": round(se, 4),
        "ci95": clip(value - Z95 * se - gap, value + Z95 * se),
        "se_clients": round(se_clients, 4),
    }
    if sampling is not None:
        entry["se_sampling"] = round(se_s, 4)
        entry["ci95_sampling"] = clip(value - Z95 * se_s - gap, value + Z95 * se_s)
        if gap:
            entry["gap"] = round(gap, 4)
    return entry


def per_client_with_averages(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-client metrics plus the per-client averages the summary reports."""
    out = dict(values)
    if all(k in values for k in ("local", "global")):
        out["average"] = (values["local"] + values["global"]) / 2
    if all(k in values for k in ("local", "global_balanced")):
        out["average_balanced"] = (values["local"] + values["global_balanced"]) / 2
    if all(k in values for k in ("local", "global", "worst")):
        out["average3"] = (values["local"] + values["global"] + values["worst"]) / 3
    return out


def method_intervals(
    summary: dict[str, float],
    values: dict[str, np.ndarray],
    weights: np.ndarray,
    estimates: dict[str, Estimate] | None = None,
    fraction: float = 1.0,
) -> dict[str, dict[str, Any]]:
    """Every summary metric's stated error: per-client `values` (NaN = left out) for the bootstrap,
    and in sampled mode the `estimates` carrying the sampling error."""
    columns = per_client_with_averages(values)
    out: dict[str, dict[str, Any]] = {}
    for metric, value in summary.items():
        if metric == "failed":
            continue
        if metric in SPREAD:
            column, statistic = SPREAD[metric]
            se_c = bootstrap_se(columns[column], weights, statistic)
        elif metric in columns:
            se_c = bootstrap_se(columns[metric], weights)
        else:
            continue
        sampling = None
        if estimates is not None:
            est = estimates.get(metric)
            if est is not None:
                sampling = (successive_difference_se(est.z, fraction), est.gap)
            elif metric in EXACT_WHEN_SAMPLED:
                sampling = (0.0, 0.0)
        out[metric] = stated(value, se_c, sampling, None if metric in UNBOUNDED else (0.0, 100.0))
        if estimates is not None and sampling is None:
            out[metric]["se_sampling"] = None  # on the sampled images, but its sampling error is not estimated
    return out


def paired_difference(
    a: dict[str, np.ndarray],
    b: dict[str, np.ndarray],
    weights: np.ndarray,
    est_a: dict[str, Estimate] | None = None,
    est_b: dict[str, Estimate] | None = None,
    fraction: float = 1.0,
) -> dict[str, dict[str, Any]]:
    """Method a minus method b per client (clients both have), averaged, with its stated error."""
    ca, cb = per_client_with_averages(a), per_client_with_averages(b)
    out: dict[str, dict[str, Any]] = {}
    for metric in ca:
        if metric not in cb:
            continue
        diff = ca[metric] - cb[metric]
        if np.isnan(diff).all():
            continue
        value = float(np.nanmean(diff))
        se_c = bootstrap_se(diff, weights)
        se_s, gap_low, gap_high = 0.0, 0.0, 0.0
        if est_a is not None and est_b is not None and metric in est_a and metric in est_b:
            se_s = successive_difference_se(est_a[metric].z - est_b[metric].z, fraction)
            gap_low, gap_high = est_a[metric].gap, est_b[metric].gap
        se = math.hypot(se_c, se_s)
        out[metric] = {
            "diff": round(value, 4),
            "se": round(se, 4),
            "ci95": [round(value - Z95 * se - gap_low, 4), round(value + Z95 * se + gap_high, 4)],
        }
    return out


def paired_interval(diffs: np.ndarray, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The 95% interval of the mean of per-seed differences: Student's t over seeds (>= 2 seeds);
    one seed's own stated interval when there is one seed and it has one."""
    if len(diffs) >= 2:
        half = float(stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs)))
        mean = float(diffs.mean())
        return {"ci95": [round(mean - half, 4), round(mean + half, 4)], "over": "seeds"}
    if entries and "ci95" in entries[0]:
        ci95: list[float] = entries[0]["ci95"]
        return {"ci95": ci95, "over": "clients"}
    return {}


__all__ = [
    "bootstrap_se",
    "method_intervals",
    "paired_difference",
    "paired_interval",
    "per_client_with_averages",
    "resample_weights",
    "stated",
]
