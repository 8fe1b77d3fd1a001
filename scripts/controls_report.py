"""The decisive study's controls (issue 25, build 4) as one table: comparisons across its three studies.

Usage: python scripts/controls_report.py [CONTROLS_DIR, default docs/study/decisive/controls]

The three studies (swaps: FT, LP, LP-FT and the head swaps; ft-10: FT for LP-FT's 10 fine-tuning
epochs; lp-at-ft-lr: LP-FT with its LP stage at FT's learning rate) share seeds, partitions and
global models (the same global checkpoint: the same config but for personalization), so their
clients pair across studies. Each row is a paired difference A - B: mean over seeds of the mean
over clients, Student's t over the seeds' means (pftlab.study.decision.paired), Holm over each
benchmark's table. Writes CONTROLS_DIR/report.md; prints it too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pftlab.core.io import atomic_write_text
from pftlab.study.decision import Clients, Paired, holm, paired, read_clients, verdict

METRICS = ("local", "global_balanced", "distortion_own")
# key (for docs/study/README.md's decision-controls marker): (what the row asks, A, B); A and B are (study, method)
ROWS = {
    "whole": ("FT − global model (FT's whole change)", ("swaps", "ft"), ("swaps", "global-model")),
    "features": (
        "FT's backbone + global head − global model (the features' part)",
        ("swaps", "ft-global-head"),
        ("swaps", "global-model"),
    ),
    "head": (
        "global backbone + FT's head − global model (the head's part)",
        ("swaps", "ft-global-body"),
        ("swaps", "global-model"),
    ),
    "lp": ("LP − global model (a head fitted at lr 0.1)", ("swaps", "lp"), ("swaps", "global-model")),
    "ft-10": ("FT 10 epochs − FT 15", ("ft-10", "ft"), ("swaps", "ft")),
    "lp-ft": ("LP-FT − FT 15 (the study's comparison)", ("swaps", "lp-ft"), ("swaps", "ft")),
    "lp-ft-10": ("LP-FT − FT 10 (equal FT epochs)", ("swaps", "lp-ft"), ("ft-10", "ft")),
    "lp-lr": ("LP-FT with LP at lr 0.01 − LP-FT", ("lp-at-ft-lr", "lp-ft"), ("swaps", "lp-ft")),
    "lp-lr-10": ("LP-FT with LP at lr 0.01 − FT 10", ("lp-at-ft-lr", "lp-ft"), ("ft-10", "ft")),
}
LABELS = {
    ("swaps", "global-model"): "global model",
    ("swaps", "ft"): "FT (15 epochs)",
    ("ft-10", "ft"): "FT (10 epochs)",
    ("swaps", "lp"): "LP (lr 0.1)",
    ("swaps", "lp-ft"): "LP-FT (LP 5 epochs at lr 0.1, FT 10 at 0.01)",
    ("lp-at-ft-lr", "lp-ft"): "LP-FT with LP at lr 0.01",
    ("swaps", "ft-global-head"): "FT's backbone, global head",
    ("swaps", "ft-global-body"): "global backbone, FT's head",
}


def cells(study: Path, benchmark: str) -> dict[int, Clients]:
    """seed -> the finished cell's clients.csv (a manifest.json: finished)."""
    out = {}
    for cell in sorted((study / "runs" / benchmark).glob("seed*")):
        if (cell / "manifest.json").exists():
            out[int(cell.name.removeprefix("seed"))] = read_clients(cell / "clients.csv")
    return out


def fmt(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:+.2f}"


def studies(root: Path, benchmark: str) -> tuple[dict[str, dict[int, Clients]], list[int]]:
    """The three studies' finished cells of `benchmark`, and the seeds finished in all three."""
    data = {s: cells(root / s, benchmark) for s in ("swaps", "ft-10", "lp-at-ft-lr")}
    return data, sorted(set.intersection(*(set(d) for d in data.values())))


def differences(data: dict[str, dict[int, Clients]], seeds: list[int]) -> dict[str, list[tuple[Paired, float]]]:
    """ROWS' key -> per metric, the paired difference A - B over `seeds` (studies()) and its p-value
    after Holm over the benchmark's tested comparisons (nan: not tested)."""
    results = [
        paired([data[a[0]][s][a[1]][k] for s in seeds], [data[b[0]][s][b[1]][k] for s in seeds])
        for _, a, b in ROWS.values()
        for k in METRICS
    ]
    both = list(zip(results, holm([r.p for r in results]), strict=True))
    n = len(METRICS)
    return {key: both[i * n : (i + 1) * n] for i, key in enumerate(ROWS)}


def significant(result: Paired, p_adjusted: float) -> bool:
    return verdict(result.diff, p_adjusted) not in ("no difference", "not tested")


def benchmark_section(root: Path, benchmark: str) -> str:
    data, seeds = studies(root, benchmark)
    if not seeds:
        return f"### {benchmark}\n\nNo seed finished in all three studies.\n"
    lines = [f"### {benchmark} (seeds {', '.join(map(str, seeds))})", ""]
    lines += ["| model | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for (study, method), label in LABELS.items():
        means = [np.mean([np.nanmean(data[study][s][method][k]) for s in seeds]) for k in METRICS]
        lines.append(f"| {label} | " + " | ".join(f"{m:.2f}" for m in means) + " |")
    found = differences(data, seeds)
    lines += ["", "| A minus B | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for key, (question, _, _) in ROWS.items():
        row = []
        for r, p in found[key]:
            mark = "**" if significant(r, p) else ""
            row.append(f"{mark}{fmt(r.diff)} [{fmt(r.low)}, {fmt(r.high)}]{mark}")
        lines.append(f"| {question} | " + " | ".join(row) + " |")
    tested = sum(1 for cells in found.values() for r, _ in cells if np.isfinite(r.p))
    untested = len(ROWS) * len(METRICS) - tested
    lines += [
        "",
        f"Holm over the {tested} tested comparisons of this table"
        + (
            f" ({untested} cell(s) without a spread across seeds, e.g. a distortion that is 0 in every seed, are not "
            "tested)."
            if untested
            else "."
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path("docs/study/decisive/controls")
    benchmarks = sorted({p.name for s in ("swaps", "ft-10", "lp-at-ft-lr") for p in (root / s / "runs").glob("*")})
    text = "\n".join(
        [
            "# Controls that isolate the mechanism (issue 25, build 4)",
            "",
            "Written by `scripts/controls_report.py` from the published cells of "
            "[swaps](swaps/report.md), [ft-10](ft-10/report.md) and [lp-at-ft-lr](lp-at-ft-lr/report.md): every "
            "method at its default setting, local choice (no grid), 5 seeds; the three studies share each seed's "
            "global model, so clients pair across them. First table: means over seeds of the mean over clients "
            "(accuracy %, distortion_own = mean feature distance from the global model on the client's own test "
            "images). Second: paired differences A − B with 95% intervals (Student's t over the seeds' means); "
            "bold = significant after Holm over the benchmark's tested comparisons (counted under each table).",
            "",
            *(benchmark_section(root, b) for b in benchmarks),
        ]
    )
    atomic_write_text(root / "report.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
