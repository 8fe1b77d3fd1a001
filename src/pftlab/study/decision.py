"""The study's Decision: LP-FT against every other method, paired, with intervals and Holm's correction.

"Within seed std" compared two means with the spread of either, ignoring that both methods were
scored on the same clients, test images and seeds. Here every comparison is paired: per client
and seed the difference reference minus method. With several seeds each seed's mean over clients
is one observation and the interval is Student's t over seeds (seeds are the units that vary: each
is a new federation and global model); with one seed the clients are bootstrapped. The worst-off
client's accuracy has one value per seed: Student's t over seeds too. The comparisons of one
`decide` call (a benchmark under one choice rule) form one family, corrected with Holm–Bonferroni,
so "better" or "worse" at the 95% level holds for that table as a whole, not for one cell picked
after the fact. The intervals shown are not adjusted.
"""

from __future__ import annotations

import csv
import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from pftlab.core.errors import UserError, one_line
from pftlab.core.io import write_csv
from pftlab.evaluate.choice import SEPARATOR

Clients = dict[str, dict[str, np.ndarray]]  # method -> metric -> per-client values, clients in file order
METRICS = ("local", "global_balanced", "global", "average_balanced")
REQUIRED = ("method", "client", "local", "global", "global_balanced")
LEVEL = 0.05
CHUNK = 1 << 23  # client draws per batch of the bootstrap (32 MiB of int32 indices)


def read_clients(path: Path) -> Clients:
    """A run's clients.csv by header name (columns may be added or reordered later); empty cells are NaN.

    The required columns must be numeric; any other column is kept when all its cells are numbers
    (a text column such as `domain` is left out), so new metrics are read without changing this.
    """
    name = one_line(str(path))
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            table = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"cannot read {name}: {one_line(str(err))}") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UserError(f"{name} lacks column(s) {', '.join(missing)}: not a pftlab clients.csv")
    rows: dict[str, list[dict[str, str]]] = {}
    for row in table:
        rows.setdefault(row["method"], []).append(row)
    out: Clients = {}
    for method, group in rows.items():
        out[method] = {}
        for column in header:
            try:
                values = [float(r[column]) if r[column] not in ("", None) else math.nan for r in group]
            except (TypeError, ValueError):
                if column in REQUIRED[1:]:
                    raise UserError(f"{name}: column {column} of method {one_line(method)} is not numeric") from None
                continue
            out[method][column] = np.array(values, dtype=float)
    return out


def with_average(clients: Clients) -> Clients:
    """A copy with the headline per-client `average_balanced = (local + global_balanced) / 2` added."""
    out = {m: dict(v) for m, v in clients.items()}
    for values in out.values():
        if "local" in values and "global_balanced" in values:
            values["average_balanced"] = (values["local"] + values["global_balanced"]) / 2
    return out


@dataclass(frozen=True)
class Paired:
    """One paired difference a - b: the observed value, its 95% interval and a two-sided p-value."""

    diff: float
    low: float
    high: float
    p: float
    seeds: int
    clients: int


NAN_PAIRED = Paired(math.nan, math.nan, math.nan, math.nan, 0, 0)


def paired_bootstrap(a: list[np.ndarray], b: list[np.ndarray], n_boot: int = 10_000, seed: int = 0) -> Paired:
    """Hierarchical paired bootstrap of mean over seeds of (mean over clients of a - b).

    a[s], b[s] hold the same clients of seed s (NaN in either drops the client). Each resample draws
    the seeds with replacement, then within each drawn seed its clients with replacement: seeds and
    clients both vary, as they would in a rerun with new seeds and a new federation. With one seed
    only clients are resampled, so the interval then says nothing about seed-to-seed variation.
    The interval is the percentile one; p = 2 min(P(stat <= 0), P(stat >= 0)) with (count + 1) /
    (n_boot + 1), so it is never 0 and is capped at 1. Vectorised: one loop over seeds, none over n_boot.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    diffs = []
    for x, y in zip(a, b, strict=True):
        d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
        if np.any(~np.isnan(d)):
            diffs.append(d[~np.isnan(d)])
    if not diffs:
        return NAN_PAIRED
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(diffs), size=(n_boot, len(diffs)))
    means = np.empty(drawn.size)
    for s, d in enumerate(diffs):
        slots = np.flatnonzero(drawn == s)
        step = max(1, CHUNK // d.size)  # bounded memory: ~CHUNK client draws at a time
        for start in range(0, slots.size, step):
            picks = rng.integers(0, d.size, size=(min(step, slots.size - start), d.size), dtype=np.int32)
            means[slots[start : start + step]] = d[picks].mean(axis=1)
    boot = means.reshape(drawn.shape).mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    tail = min(np.count_nonzero(boot <= 0), np.count_nonzero(boot >= 0))
    p = min(1.0, 2 * (int(tail) + 1) / (n_boot + 1))
    observed = float(np.mean([d.mean() for d in diffs]))
    return Paired(observed, float(low), float(high), p, len(diffs), sum(d.size for d in diffs))


def paired_seeds(a: list[float], b: list[float]) -> Paired:
    """Per-seed paired differences a - b of a federation-level number (one value per seed, e.g. the
    worst-off client's accuracy): resampling clients would not reproduce how that number varies,
    so the mean difference gets a Student-t 95% interval and a one-sample t-test over seeds.
    Under 2 seeds there is no spread to test against: interval and p are NaN ("not tested")."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[~np.isnan(d)]
    diff = float(d.mean()) if d.size else math.nan
    sd = float(d.std(ddof=1)) if d.size >= 2 else 0.0
    if sd == 0:  # under 2 seeds, or every seed the same difference: no spread to test against
        return Paired(diff, math.nan, math.nan, math.nan, int(d.size), 0)
    half = float(stats.t.ppf(0.975, d.size - 1)) * sd / math.sqrt(d.size)
    p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return Paired(diff, diff - half, diff + half, p, int(d.size), 0)


def paired(a: list[np.ndarray], b: list[np.ndarray], n_boot: int = 10_000, seed: int = 0) -> Paired:
    """The paired comparison the decision uses for a per-client metric.

    With 2 or more seeds: each seed's mean over its clients of a - b is one observation, and the
    interval and p-value are Student's t over seeds (S - 1 degrees of freedom). Each seed is a new
    federation and global model, so seeds are the units that vary; a bootstrap that resamples so few
    seeds understates their spread (simulated with no true difference, the hierarchical bootstrap
    called 18% of 3-seed and 14% of 5-seed comparisons significant at 5%, the t-test 2.5-5.5%). The
    clients' variation is inside each seed's mean. With one seed: the clients' bootstrap.
    """
    per_seed = []
    for x, y in zip(a, b, strict=True):
        d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
        d = d[~np.isnan(d)]
        if d.size:
            per_seed.append(d)
    if len(per_seed) < 2:
        return paired_bootstrap(a, b, n_boot, seed)
    t = paired_seeds([float(d.mean()) for d in per_seed], [0.0] * len(per_seed))
    return Paired(t.diff, t.low, t.high, t.p, t.seeds, sum(d.size for d in per_seed))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values: the k-th smallest of m times (m - k + 1), made monotone
    by a running maximum and capped at 1. NaN (an untested comparison) stays NaN and is not counted in m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * (len(order) - np.arange(len(order)))
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled)) if len(order) else scaled
    return [float(v) for v in out]


@dataclass(frozen=True)
class Comparison:
    """Reference minus `method` on `metric` (positive: the reference is higher), after Holm."""

    method: str
    metric: str
    diff: float
    low: float
    high: float
    p: float
    p_adjusted: float
    verdict: str
    seeds: int
    clients: int

    def to_dict(self) -> dict[str, Any]:
        """Plain values; NaN as None, so the dict goes into JSON (which has no NaN) as it is."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


def verdict(diff: float, p_adjusted: float) -> str:
    if math.isnan(p_adjusted):
        return "not tested"
    if p_adjusted < LEVEL and diff != 0:
        return "better" if diff > 0 else "worse"
    return "no difference"


def _stream(seed: int, method: str, metric: str) -> int:
    """A bootstrap seed per comparison, so one comparison's result does not depend on the others present."""
    key = [seed, zlib.crc32(method.encode()), zlib.crc32(metric.encode())]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def decide(
    cells: dict[int, Clients],
    reference: str = "lp-ft",
    metrics: Sequence[str] = METRICS,
    n_boot: int = 10_000,
    seed: int = 0,
) -> list[Comparison]:
    """Every method present in every seed against `reference`, on each metric, for ONE benchmark.

    `cells` maps seed -> read_clients(). Per-client metrics use `paired` (Student's t over the seeds'
    client means; one seed: the clients' bootstrap); "local_min" (the worst-off client's local
    accuracy, over clients valid in both methods) uses paired_seeds. The Holm family is exactly the
    comparisons returned by this call (those with a p-value). No comparisons when the reference is
    missing from a seed.
    """
    seeds = sorted(cells)
    tables = [with_average(cells[s]) for s in seeds]
    if not tables or any(reference not in t for t in tables):
        return []
    others = [m for m in tables[0] if m != reference and all(m in t for t in tables)]
    found: list[tuple[str, str, Paired]] = []
    for method in others:
        for s, t in zip(seeds, tables, strict=True):
            ids = t[reference].get("client"), t[method].get("client")
            if ids[0] is not None and ids[1] is not None and not np.array_equal(ids[0], ids[1]):
                raise UserError(f"seed {s}: {one_line(reference)} and {one_line(method)} were scored on other clients")
        for metric in metrics:
            if all(metric in t[reference] and metric in t[method] for t in tables):
                a, b = [t[reference][metric] for t in tables], [t[method][metric] for t in tables]
                found.append((method, metric, paired(a, b, n_boot, _stream(seed, method, metric))))
        if all("local" in t[reference] and "local" in t[method] for t in tables):
            mins = [_paired_min(t[reference]["local"], t[method]["local"]) for t in tables]
            found.append((method, "local_min", paired_seeds([x for x, _ in mins], [y for _, y in mins])))
    adjusted = holm([r.p for _, _, r in found])
    return [
        Comparison(m, k, r.diff, r.low, r.high, r.p, q, verdict(r.diff, q), r.seeds, r.clients)
        for (m, k, r), q in zip(found, adjusted, strict=True)
    ]


def _paired_min(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    keep = ~(np.isnan(a) | np.isnan(b))
    return (float(a[keep].min()), float(b[keep].min())) if keep.any() else (math.nan, math.nan)


def _cell(c: Comparison | None) -> str:
    if c is None:
        return ""
    if math.isnan(c.low):
        return "" if math.isnan(c.diff) else f"{c.diff:+.2f} {c.verdict}"
    return f"{c.diff:+.2f} [{c.low:.2f}, {c.high:.2f}] {c.verdict}"


def decision_markdown(
    rows: dict[str, list[Comparison]],
    metrics: Sequence[str] = (*METRICS, "local_min"),
    n_boot: int = 10_000,
    reference: str = "lp-ft",
) -> str:
    """One table per benchmark: rows = methods, columns = metrics, cells = reference minus method."""
    text = (
        f"Each cell is {reference} minus the row's method, in accuracy points, paired on the same clients, test "
        "images and seeds, with its 95% interval and verdict. For per-client metrics (average_balanced = "
        "(local + global_balanced) / 2) the difference is the mean over seeds of the mean over clients; with "
        "two or more seeds its interval and p-value are Student's t over the seeds' client means (each seed a "
        "new federation and global model: seeds are the units; a bootstrap that resamples a handful of seeds "
        "understates their spread), with one seed a bootstrap over clients "
        f"({n_boot} resamples). local_min (the worst-off client's local accuracy) has one value per seed: "
        "Student's t over the per-seed differences (not tested under 2 seeds or when every seed gives the same "
        "difference). Each table is one family, adjusted with Holm–Bonferroni; the verdict is better / worse "
        "when the adjusted p is below 0.05, else no difference. The intervals are not adjusted, so an interval "
        "that excludes 0 can sit beside 'no difference'.\n"
    )
    for bench, comparisons in rows.items():
        by = {(c.method, c.metric): c for c in comparisons}
        methods = list(dict.fromkeys(c.method for c in comparisons))
        text += f"\n### {bench}\n\n| method | " + " | ".join(metrics) + " |\n|---" + "|---" * len(metrics) + "|\n"
        for m in methods:
            text += f"| {m} | " + " | ".join(_cell(by.get((m, k))) for k in metrics) + " |\n"
        if not methods:
            text += f"| (no comparisons: {reference} is not in every seed, or nothing else is) |" + " |" * len(metrics)
            text += "\n"
    return text


def write_decision(out: Path, rows: dict[str, list[Comparison]]) -> None:
    """decision.csv in `out`: one line per benchmark x method x metric, written atomically; NaN is empty."""
    header = ["benchmark", *Comparison.__dataclass_fields__]
    lines = [{"benchmark": bench, **c.to_dict()} for bench, cs in rows.items() for c in cs]
    write_csv(Path(out) / "decision.csv", lines, header=header, float_format=".6g")


def by_rule(table: Clients, rules: Sequence[str], rule: str) -> Clients:
    """One choice rule's methods under their own names (<method>@<rule> -> method), with the global
    model, whose weights no rule chooses."""
    out = {m: v for m, v in table.items() if m == "global-model"}
    for method, values in table.items():
        base, _, suffix = method.partition(SEPARATOR)
        if (suffix or rules[0]) == rule and base != "global-model":
            out[base] = values
    return out


def choice_cost(
    cells: dict[int, Clients], rules: Sequence[str], metrics: Sequence[str] = ("local", "global_balanced")
) -> list[Comparison]:
    """Each method chosen by the second rule minus chosen by the first, paired per client and seed:
    what choosing on every client's validation data buys in global accuracy and costs in local.
    One Holm family per call."""
    if len(rules) < 2:
        return []
    tables = [cells[s] for s in sorted(cells)]
    first, second = [by_rule(t, rules, rules[0]) for t in tables], [by_rule(t, rules, rules[1]) for t in tables]
    found: list[tuple[str, str, Paired]] = []
    for method in first[0]:
        if method == "global-model" or not all(method in a and method in b for a, b in zip(first, second, strict=True)):
            continue
        for metric in metrics:
            a, b = [t[method][metric] for t in second], [t[method][metric] for t in first]
            found.append((method, metric, paired(a, b, 10_000, _stream(0, method, f"choice/{metric}"))))
    adjusted = holm([r.p for _, _, r in found])
    return [
        Comparison(m, k, r.diff, r.low, r.high, r.p, q, verdict(r.diff, q), r.seeds, r.clients)
        for (m, k, r), q in zip(found, adjusted, strict=True)
    ]


@dataclass(frozen=True)
class Fairness:
    """Who loses when a method personalises: the per-client change against the global model, pooled
    over clients and seeds (each client of each seed counts once)."""

    method: str
    metric: str
    clients: int
    losers: float  # share of clients below the global model, percent
    p10: float  # 10th percentile of the change (points): the unlucky tenth
    median: float
    worst: float  # the largest loss


def fairness(cells: dict[int, Clients], metrics: Sequence[str] = ("local", "global_balanced")) -> list[Fairness]:
    """Per method and metric, the distribution of (method - global model) over every client and seed."""
    tables = [cells[s] for s in sorted(cells)]
    if not tables or any("global-model" not in t for t in tables):
        return []
    out = []
    for method in tables[0]:
        if method == "global-model" or not all(method in t for t in tables):
            continue
        for metric in metrics:
            change = np.concatenate([t[method][metric] - t["global-model"][metric] for t in tables])
            change = change[~np.isnan(change)]
            if change.size:
                p10, median = np.percentile(change, [10, 50])
                losers = 100.0 * float(np.mean(change < 0))
                worst = float(change.min())
                out.append(Fairness(method, metric, change.size, losers, float(p10), float(median), worst))
    return out


def fairness_markdown(rows: dict[str, list[Fairness]]) -> str:
    """One table per benchmark: per method, the share of clients that lose and how much, on each metric."""
    text = ""
    for bench, items in rows.items():
        metrics = list(dict.fromkeys(f.metric for f in items))
        by = {(f.method, f.metric): f for f in items}
        text += f"\n**{bench}**\n\n| method | " + " | ".join(f"{k}: losers / p10 / median / worst" for k in metrics)
        text += " |\n|---" + "|---" * len(metrics) + "|\n"
        for m in dict.fromkeys(f.method for f in items):
            cells = [by.get((m, k)) for k in metrics]
            text += f"| {m} | " + " | ".join(
                f"{c.losers:.0f}% / {c.p10:+.1f} / {c.median:+.1f} / {c.worst:+.1f}" if c else "" for c in cells
            )
            text += " |\n"
    return text
