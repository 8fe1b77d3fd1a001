"""The study's outputs: Table 2 as Markdown and CSV, a local-vs-global scatter per benchmark, report.md.

Every sentence about who wins is computed from the aggregated numbers, so the report says what
the runs say, whatever they say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pftlab.core.io import atomic_write_text, write_csv, write_png
from pftlab.data.benchmarks import BENCHMARKS
from pftlab.evaluate.choice import SEPARATOR
from pftlab.evaluate.intervals import paired_interval
from pftlab.evaluate.metrics import DEFINITIONS
from pftlab.personalize import METHODS
from pftlab.study.decision import Comparison, Fairness, decision_markdown, fairness_markdown

TABLE = ("local", "global", "worst", "average", "average3", "c_std", "distortion_own")
HIGHER_BETTER = ("local", "global", "worst", "average", "average3")
REFERENCE = "global-model"  # the un-personalized model: a reference row, never a winner
PAPER = ("ft", "proximal-ft", "soup-ft", "sparse-ft", "lss-ft", "lp-ft")  # the study's Table 2 columns

Agg = dict[str, Any]  # pftlab.experiment.aggregate.aggregate() of one benchmark's seeds


@dataclass(frozen=True)
class Win:
    """The best method on a metric, its runner-up, and whether the gap exceeds the seed-to-seed spread."""

    method: str
    mean: float
    runner_up: str
    margin: float
    clear: bool

    def text(self) -> str:
        return f"{self.method} ({self.mean:.2f}{'' if self.clear else ', within noise'})"


def _mean(agg: Agg, method: str, metric: str) -> float:
    mean: float = agg["methods"][method][metric]["mean"]
    return mean


def winner(agg: Agg, metric: str, among: list[str]) -> Win:
    """Highest mean wins (first listed on ties). `clear` if the lead is more than noise: with >= 2
    seeds, the 95% t-interval of the per-seed paired differences (winner minus runner-up) lies above
    0; from aggregates without per-seed values, if the lead beats both methods' seed std."""
    ranked = sorted(among, key=lambda m: -_mean(agg, m, metric) if math.isfinite(_mean(agg, m, metric)) else math.inf)
    first = ranked[0]
    second = ranked[1] if len(ranked) > 1 else first
    margin = _mean(agg, first, metric) - _mean(agg, second, metric)
    a, b = agg["methods"][first][metric], agg["methods"][second][metric]
    if first != second and len(a.get("values", [])) >= 2 and len(a["values"]) == len(b.get("values", [])):
        lo = paired_interval(np.array(a["values"]) - np.array(b["values"]))["ci95"][0]
        return Win(first, _mean(agg, first, metric), second, round(margin, 4), lo > 0)
    spread = max(a["std"], b["std"])
    return Win(first, _mean(agg, first, metric), second, round(margin, 4), margin > spread)


def methods_of(agg: Agg) -> list[str]:
    return [m for m in agg["methods"] if m != REFERENCE]


def _integrated(method: str) -> bool:
    """A process-integrated baseline, under any choice rule (`fedper@cross-site` too); a name no longer
    registered, e.g. a removed plugin's, counts as post-hoc."""
    spec = METHODS.get(method.partition(SEPARATOR)[0])
    return spec is not None and spec.integrated


FEATURE_METRICS = ("distortion_own", "distortion_others", "cka_own", "cka_others")


def measured(method: str, metric: str) -> bool:
    """False for feature distortion and CKA of a process-integrated baseline: they are measured against
    the FedAvg global model, which the baseline never started from (its own federated training does),
    so they say nothing about its personalization and are left out of the tables."""
    return not (metric in FEATURE_METRICS and _integrated(method))


def verdict(agg: Agg) -> dict[str, Any]:
    """Winners over every method, and the study's pattern among its own six methods (where present)."""
    methods = methods_of(agg)
    out: dict[str, Any] = {m: winner(agg, m, methods) for m in ("global", "average", "average3")}
    integrated = [m for m in methods if _integrated(m)]
    out["integrated"] = winner(agg, "average3", integrated) if integrated else None
    paper = [m for m in PAPER if m in agg["methods"]]
    if "lp-ft" not in paper or "proximal-ft" not in paper or len(paper) < 3:
        out["pattern"] = None  # needs LP-FT, Proximal FT and one more of the study's baselines
        return out
    baselines = [m for m in paper if m != "lp-ft"]
    g, a, b = winner(agg, "global", paper), winner(agg, "average3", paper), winner(agg, "average3", baselines)
    gap = _mean(agg, "lp-ft", "global") - _mean(agg, "ft", "global") if "ft" in paper else None
    paired = agg.get("paired", {}).get("lp-ft - ft", {}).get("global", {})
    out["pattern"] = {
        "lpft_best_global": g.method == "lp-ft",
        "lpft_best_average3": a.method == "lp-ft",
        "best_global": g,
        "best_average3": a,
        "strongest_baseline": b,
        "proximal_strongest": b.method == "proximal-ft",
        "lpft_minus_ft_global": gap,
        "lpft_minus_ft_ci95": paired.get("ci95"),  # per client and seed, paired: summary.json / aggregate.json
        "holds": g.method == "lp-ft" and a.method == "lp-ft" and b.method == "proximal-ft",
    }
    return out


def table_rows(aggs: dict[str, Agg]) -> list[dict[str, Any]]:
    """One row per benchmark and method: mean and std of every metric in the summaries."""
    found = {k for agg in aggs.values() for values in agg["methods"].values() for k in values}
    order = list(DEFINITIONS)  # a fixed column order: summary.json stores its keys sorted
    metrics = sorted(found, key=lambda k: (order.index(k) if k in order else len(order), k))
    rows = []
    for name, agg in aggs.items():
        for method, values in agg["methods"].items():
            row: dict[str, Any] = {"benchmark": name, "method": method, "seeds": " ".join(map(str, agg["seeds"]))}
            for k in metrics:
                shown = k in values and measured(method, k)
                row[f"{k}_mean"] = values[k]["mean"] if shown else ""
                row[f"{k}_std"] = values[k]["std"] if shown else ""
            rows.append(row)
    return rows


def _cell(agg: Agg, method: str, metric: str, best: dict[str, float]) -> str:
    v = agg["methods"][method].get(metric)
    if v is None or not measured(method, metric):
        return ""
    digits = 3 if metric.startswith("distortion") else 2
    text = f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}"
    return f"**{text}**" if method != REFERENCE and best.get(metric) == v["mean"] else text


def table_markdown(aggs: dict[str, Agg]) -> str:
    """Table 2 with every metric: one row per benchmark and method; bold = best mean among the methods."""
    lines = [
        "| benchmark | method | " + " | ".join(TABLE) + " |",
        "|---|---" + "|---:" * len(TABLE) + "|",
    ]
    for name, agg in aggs.items():
        best = {k: max(_mean(agg, m, k) for m in methods_of(agg)) for k in HIGHER_BETTER}
        for method in agg["methods"]:
            lines.append(f"| {name} | {method} | " + " | ".join(_cell(agg, method, k, best) for k in TABLE) + " |")
    return "\n".join(lines) + "\n"


def write_tables(out: Path, aggs: dict[str, Agg]) -> None:
    seeds = ", ".join(map(str, next(iter(aggs.values()))["seeds"]))
    head = (
        f"# Table 2: every benchmark x method, seeds {seeds}\n\n"
        "Accuracy %, mean ± sample std over seeds (distortion: mean L2 feature distance on the client's own test "
        "samples). average = (local + global) / 2, the study's stated definition; average3 = (local + global + "
        "worst) / 3, what its Table 2 reports. Bold: the best mean among the methods of a benchmark. "
        "Distortion and CKA are left blank for the process-integrated baselines (FedPer, FedRep, Ditto): they "
        "would be measured against the FedAvg global model, which those never started from.\n\n"
    )
    atomic_write_text(out / "table.md", head + table_markdown(aggs))
    write_csv(out / "table.csv", table_rows(aggs))


def scatter(agg: Agg, title: str, path: Path) -> None:
    """Local vs global, one point per method with error bars over seeds; the global model as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cmap = plt.get_cmap("tab20")
    assert isinstance(cmap, ListedColormap)  # tab20 is a list of 20 colours: a ListedColormap of a tuple
    colors = cmap.colors
    assert isinstance(colors, tuple | list)
    fig, ax = plt.subplots(figsize=(6, 5))
    for k, (method, v) in enumerate(agg["methods"].items()):
        is_ref = method == REFERENCE
        ax.errorbar(
            v["local"]["mean"],
            v["global"]["mean"],
            xerr=v["local"]["std"],
            yerr=v["global"]["std"],
            fmt="*" if is_ref else "s" if _integrated(method) else "o",
            markersize=13 if is_ref else 7,
            color="black" if is_ref else colors[k % len(colors)],
            markeredgecolor="black",
            capsize=3,
            label=method + (" (process-integrated)" if _integrated(method) else ""),
            zorder=3 if is_ref else 2,
        )
    lo, hi = min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([lo, hi], [lo, hi], ls=":", color="grey", lw=1)
    ax.set_xlabel("local accuracy (%): own test set")
    ax.set_ylabel("global accuracy (%): other clients' test sets")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    write_png(path, fig)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def pattern_row(name: str, v: dict[str, Any]) -> str:
    p = v["pattern"]
    overall = f"{v['global'].text()} | {v['average3'].text()} | {v['average'].text()}"
    if p is None:
        return f"| {name} | {overall} | not tested | | | | |"
    gap = "" if p["lpft_minus_ft_global"] is None else f"{p['lpft_minus_ft_global']:+.2f}"
    if p.get("lpft_minus_ft_ci95"):
        lo, hi = p["lpft_minus_ft_ci95"]
        gap += f" [{lo:+.2f}, {hi:+.2f}]"
    lp_g = _yes(p["lpft_best_global"]) + ("" if p["lpft_best_global"] else f": {p['best_global'].method}")
    lp_a = _yes(p["lpft_best_average3"]) + ("" if p["lpft_best_average3"] else f": {p['best_average3'].method}")
    return (
        f"| {name} | {overall} | {lp_g} | {lp_a} | {p['strongest_baseline'].text()} | {gap} | "
        f"{'**holds**' if p['holds'] else 'does not hold'} |"
    )


def pattern_sentence(verdicts: dict[str, dict[str, Any]]) -> str:
    tested = {n: v["pattern"] for n, v in verdicts.items() if v["pattern"] is not None}
    if not tested:
        return "The pattern could not be tested: it needs lp-ft, proximal-ft and another of the study's baselines."
    holds = [n for n, p in tested.items() if p["holds"]]
    count = {k: sum(p[k] for p in tested.values()) for k in ("lpft_best_global", "lpft_best_average3")}
    prox = sum(p["proximal_strongest"] for p in tested.values())
    return (
        f"The whole pattern holds on {len(holds)} of {len(tested)} benchmarks"
        + (f" ({', '.join(holds)})" if holds else "")
        + f". Among the study's six methods LP-FT has the best global accuracy on {count['lpft_best_global']} "
        f"and the best average3 on {count['lpft_best_average3']}; Proximal FT is the strongest baseline "
        f"(by average3) on {prox}."
    )


def global_drop(agg: Agg) -> dict[str, float] | None:
    """Where FT's loss of global accuracy comes from: the head alone (LP) or the features too.

    LP moves only the head, so the global model's global accuracy minus LP's is what a head fitted
    to local data costs with the global features untouched. LP-FT can only save the rest, the part
    that feature distortion adds. None unless the global model, FT, LP and LP-FT all ran.
    """
    need = (REFERENCE, "ft", "lp", "lp-ft")
    if any(m not in agg["methods"] for m in need):
        return None
    g = {m: _mean(agg, m, "global") for m in need}
    ft_drop = g[REFERENCE] - g["ft"]
    d = {m: agg["methods"][m].get("distortion_own", {}).get("mean", math.nan) for m in ("ft", "lp-ft")}
    return {
        "global_model": g[REFERENCE],
        "lp": g["lp"],
        "ft": g["ft"],
        "lp_ft": g["lp-ft"],
        "ft_drop": ft_drop,
        # below one point of drop the share is noise
        "head_share": (g[REFERENCE] - g["lp"]) / ft_drop if ft_drop >= 1.0 else math.nan,
        "distortion_ft": d["ft"],
        "distortion_lp_ft": d["lp-ft"],
    }


def drop_section(aggs: dict[str, Agg]) -> str:
    """The table and sentence of report.md's 'Where the global accuracy goes'."""
    drops = {n: d for n, a in aggs.items() if (d := global_drop(a)) is not None}
    if not drops:
        return "Not computed: no benchmark ran all of the global model, FT, LP and LP-FT.\n"
    lines = [
        "| benchmark | global model | LP (head only) | FT | LP-FT | LP's drop / FT's drop | distortion FT "
        "| distortion LP-FT |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, d in drops.items():
        share = "FT drops < 1 point" if math.isnan(d["head_share"]) else f"{d['head_share']:.2f}"
        lines.append(
            f"| {n} | {d['global_model']:.2f} | {d['lp']:.2f} | {d['ft']:.2f} | {d['lp_ft']:.2f} | {share} "
            f"| {d['distortion_ft']:.3f} | {d['distortion_lp_ft']:.3f} |"
        )
    less = [n for n, d in drops.items() if d["distortion_lp_ft"] < d["distortion_ft"]]
    better = [n for n, d in drops.items() if d["lp_ft"] > d["ft"]]
    head = [n for n, d in drops.items() if d["head_share"] >= 0.5]
    tested = [n for n, d in drops.items() if not math.isnan(d["head_share"])]
    where = (
        f"on {len(head)} ({', '.join(head)}): there a head fitted to the client's own data costs global accuracy by "
        "itself, and LP-FT's first stage is such a fit"
        if head
        else "on none of them"
    )
    return (
        "\n".join(lines)
        + "\n\n"
        + f"LP-FT moves the features less than FT (distortion_own) on {len(less)} of {len(drops)} benchmarks and has "
        f"the higher global accuracy on {len(better)}. Of the {len(tested)} where FT loses at least a point of global "
        f"accuracy, LP alone, with the global features untouched, loses at least half as much {where}. The ratio "
        "compares two different heads (LP's is trained at its own learning rate, 0.1 by default, FT's at 0.01): it "
        "does not split FT's own loss into a head part and a feature part, and LP-FT's lower distortion is partly "
        "its shorter fine-tuning stage (10 epochs against FT's 15 by default).\n"
    )


def table2_layout(aggs: dict[str, Agg]) -> str:
    """The study's own layout: benchmarks as rows, its six methods as columns, local / global / worst / average3."""
    cols = [m for m in PAPER if any(m in a["methods"] for a in aggs.values())]
    lines = ["| benchmark | " + " | ".join(cols) + " |", "|---" + "|---" * len(cols) + "|"]
    for name, agg in aggs.items():
        cells = [
            "/".join(f"{_mean(agg, m, k):.2f}" for k in ("local", "global", "worst", "average3"))
            if m in agg["methods"]
            else ""
            for m in cols
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Results:
    """What the report is written from: aggregates per benchmark, skipped benchmarks, compute time per seed."""

    aggs: dict[str, Agg]
    skipped: dict[str, str]
    seconds: dict[str, float]
    quick: bool
    commit: str
    unverified: bool = False  # read from the cells' summary.json without verifying them (--report-only)
    decision: dict[str, list[Comparison]] = field(default_factory=dict)  # LP-FT vs each method, paired
    choice_cost: dict[str, list[Comparison]] = field(default_factory=dict)  # second choice rule minus first
    decision_notes: dict[str, str] = field(default_factory=dict)  # benchmarks without a decision, and why
    grids: str = ""  # the --grids file every cell was tuned with ("" = each method at its one setting)
    rules: list[str] = field(default_factory=lambda: ["local"])
    fairness: dict[str, list[Fairness]] = field(default_factory=dict)  # who loses, per benchmark (and rule)
    method_seconds: dict[str, dict[str, float]] = field(default_factory=dict)  # mean seconds per seed, per stage
    grid_points: dict[str, int] = field(default_factory=dict)  # per method, the grid points each client chose among


def decision_section(r: Results) -> str:
    """The paired verdicts of LP-FT against every method, and what the cross-site choice changes."""
    if not r.decision and not r.decision_notes:
        return ""
    tuning = (
        f"the grids of `{r.grids}`, each client's point chosen on validation data only by the rule(s) "
        f"{', '.join(r.rules)} (pftlab.evaluate.choice)"
        if r.grids
        else "each method at its one configured setting (no grids)"
    )
    points = ", ".join(f"{m} {n}" for m, n in r.grid_points.items())
    parts = [
        "## Decision\n",
        f"LP-FT against every method with {tuning}. Grid points per method: {points or 'not recorded'} "
        "(1 = one setting; the global model is no choice).\n",
        decision_markdown(r.decision),
    ]
    if len(r.rules) > 1:
        parts += [
            "### Does the choice rule change which method wins?\n",
            "The best mean among the methods each rule chose, the global model included (it needs no choice).\n",
            winners_by_rule(r),
        ]
    if r.decision_notes:
        parts.append("No decision for: " + "; ".join(f"{n} ({why})" for n, why in r.decision_notes.items()) + ".\n")
    if r.choice_cost:
        parts += [
            f"### What the {r.rules[1]} choice changes\n",
            f"Each method chosen by the {r.rules[1]} rule minus the same method chosen by the {r.rules[0]} rule, "
            "paired per client and seed (the same intervals; one Holm family per benchmark).\n",
            decision_markdown(
                {f"{n}: {r.rules[1]} − {r.rules[0]}": v for n, v in r.choice_cost.items()},
                ("local", "global_balanced"),
                reference="the method's other choice",
            ).split("\n", 1)[1],
        ]
    if r.fairness:
        parts += [
            "### Who loses when a method personalises\n",
            "Each method minus the global model, per client, pooled over clients and seeds: the share of clients "
            "that lose (below the global model), the 10th percentile and median of the change, and the largest "
            "loss, in accuracy points.\n",
            fairness_markdown(r.fairness),
        ]
    if any(r.method_seconds.values()):
        parts += ["### Compute\n", compute_markdown(r.method_seconds)]
    return "\n".join(parts)


def winners_by_rule(r: Results) -> str:
    """Per benchmark and choice rule, the best mean among the methods that rule chose (and the global
    model), on local, global_balanced and average_balanced ('within noise': winner minus runner-up's
    paired t-interval over seeds includes 0)."""
    metrics = ("local", "global_balanced", "average_balanced")
    lines = ["| benchmark | rule | " + " | ".join(f"best {k}" for k in metrics) + " |", "|---|---|---|---|---|"]
    for name, agg in r.aggs.items():
        methods = methods_of(agg)
        for rule in r.rules:
            among = [REFERENCE] + [
                m for m in methods if m != REFERENCE and (m.partition(SEPARATOR)[2] or r.rules[0]) == rule
            ]
            present = [k for k in metrics if all(k in agg["methods"][m] for m in among)]
            cells = [winner(agg, k, among).text() if k in present else "" for k in metrics]
            lines.append(f"| {name} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compute_markdown(seconds: dict[str, dict[str, float]]) -> str:
    """Seconds per seed of every stage and method (run.json, mean over the benchmark's cells): equal grids
    and equal epochs are not equal compute (a Soup point trains three models, a baseline's point a federation)."""
    stages = list(dict.fromkeys(k for per in seconds.values() for k in per))
    lines = [
        "Seconds per seed (mean over the benchmark's cells, from run.json; every grid point and the "
        "choice included), on the machine each cell ran on.\n",
        "| benchmark | " + " | ".join(stages) + " |",
        "|---" + "|---:" * len(stages) + "|",
    ]
    for name, per in seconds.items():
        lines.append(f"| {name} | " + " | ".join(f"{per[k]:.1f}" if k in per else "" for k in stages) + " |")
    return "\n".join(lines) + "\n"


def report_markdown(r: Results) -> str:
    """report.md: what ran, whether the study's pattern holds, Table 2, and one section per benchmark."""

    aggs, skipped, seconds, quick, commit = r.aggs, r.skipped, r.seconds, r.quick, r.commit

    verdicts = {n: verdict(a) for n, a in aggs.items()}
    any_agg = next(iter(aggs.values()))
    n_methods = max(len(methods_of(a)) for a in aggs.values())
    size = "quick sizes and a short schedule (a pipeline check, not evidence)" if quick else "default sizes"
    parts = [
        f"# The reproduction study ({'quick' if quick else 'full'})\n",
        f"{len(aggs)} benchmarks x {n_methods} methods x seeds {', '.join(map(str, any_agg['seeds']))}, at {size}; "
        f"written at commit {commit}. Accuracy %, mean ± sample std over seeds; every number comes from the run "
        "directories under runs/ (table.md, table.csv hold all of them).\n",
    ]
    if r.unverified:
        parts.append(
            "Written with `--report-only`: from each cell's summary.json as it is, neither recomputed nor "
            "verified against the cell's run key (cells published before manifests existed carry none).\n"
        )
    if skipped:
        parts.append("Skipped:\n\n" + "".join(f"- {n}: {why}\n" for n, why in skipped.items()))
    if section := decision_section(r):
        parts.append(section)
    parts += [
        "## Does the study's pattern hold?\n",
        "The study's claim (PAPER.md, Table 2): LP-FT has the best global accuracy and the best average, and "
        "Proximal FT is the strongest baseline. It is checked here among the study's six methods "
        f"({', '.join(PAPER)}), with average = average3 = (local + global + worst) / 3, what Table 2's numbers are. "
        "The first three columns give the winner over every method we ran; 'within noise' marks a lead "
        "whose 95% interval includes 0: the interval of the per-seed differences between the winner and "
        "the runner-up (paired by seed, Student's t). LP-FT − FT global gives the mean paired difference "
        "(per client, same test images) and its 95% interval over seeds.\n",
        "| benchmark | best global (all) | best average3 (all) | best average (all) | LP-FT best global (six) "
        "| LP-FT best average3 (six) | strongest baseline (six, average3) | LP-FT − FT global | pattern |",
        "|---|---|---|---|---|---|---|---:|---|",
        *(pattern_row(n, v) for n, v in verdicts.items()),
        "",
        pattern_sentence(verdicts) + "\n",
        "## Where the global accuracy goes\n",
        "Global accuracy (means over seeds) of the global model, of LP (only the head moves), of FT and of LP-FT, "
        "and the feature distortion of FT and LP-FT (mean L2 distance between global and personalized features "
        "on the client's own test samples). LP's drop / FT's drop = (global model − LP) / (global model − FT): "
        "how much global accuracy a head fitted to local data loses with the global features untouched, "
        "relative to FT's loss.\n",
        drop_section(aggs),
        "## Table 2 in the study's layout\n",
        "local / global / worst / average3, means over seeds.\n",
        table2_layout(aggs),
        "## Benchmark by benchmark\n",
    ]
    for name, agg in aggs.items():
        bench = BENCHMARKS.get(agg["benchmark"])
        v = verdicts[name]
        sec = seconds.get(name, 0.0)
        time_note = f" About {sec:.{0 if sec >= 10 else 1}f} s of compute per seed." if sec else ""
        if v["integrated"] is not None and "lp-ft" in agg["methods"]:
            time_note = (
                f" Best process-integrated baseline on average3: {v['integrated'].text()}, LP-FT "
                f"{_mean(agg, 'lp-ft', 'average3'):.2f}." + time_note
            )
        parts += [
            f"### {name}\n",
            f"{bench.shift if bench else agg['benchmark']}; {agg['num_clients']} clients. Best global: "
            f"{v['global'].text()}; best average3: {v['average3'].text()}; best average: {v['average'].text()}."
            f"{time_note}\n",
            table_markdown({name: agg}),
            f"![{name}: local vs global](figures/{name}.png)\n",
        ]
    return "\n".join(parts)


def write_report(out: Path, r: Results) -> None:
    """table.md, table.csv, figures/<benchmark>.png and report.md in `out` (report.html: pftlab.study.html)."""
    write_tables(out, r.aggs)
    for name, agg in r.aggs.items():
        scatter(agg, f"{name}: local vs global, mean ± std over seeds {agg['seeds']}", out / "figures" / f"{name}.png")
    atomic_write_text(out / "report.md", report_markdown(r))
