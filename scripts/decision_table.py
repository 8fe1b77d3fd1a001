"""The Decision tables of docs/study/README.md, computed from the published cells.

Usage: python scripts/decision_table.py [--check] [--figure PNG] [README, default docs/study/README.md]

Each table in README follows a marker line that says where its numbers come from:

    <!-- decision-table decisive/heart heart local global-model ft lp fedper -->

(a published study's folder relative to README, the benchmark, the choice rule, the rows' methods).
The table under it is rewritten from that study's cells (runs/<benchmark>/seed<s>/clients.csv of
the seeds its study.json lists) with the report's own statistics (pftlab.study.decision.decide, as
report.md and decision.csv have them, rounded once from full precision): LP-FT minus each method
on local, global_balanced and average_balanced, the paired 95% interval over seeds, and the verdict
after Holm's correction over the report's whole table (the README shows a subset of its rows, so
"no difference" can stand beside an interval that excludes 0). The regime tables (one study per row,
LP-FT minus one method on local / global_balanced under both choice rules) follow

    <!-- decision-rows ft metrics decisive/swap/pairs0:digits-quick decisive/swap/pairs1:digits-quick -->

(the method; `metrics`: a column per metric, the two rules in each cell, or `rules`: a column per
rule, the two metrics in each cell; then each row's study:benchmark, in order): their numeric
cells are rewritten and the rows' label cells kept. Paired differences within one study follow

    <!-- decision-diffs decisive/label fmnist-dirichlet ft:global-model lp-ft:ft -->

(each row A:B: local and global_balanced under the local choice, the cross-site choice's in brackets;
Student's t over seeds, not adjusted, except LP-FT's rows, which are the report's, with their
verdict). The controls' table (differences across the three studies of the controls, which share
each seed's global model) follows

    <!-- decision-controls decisive/controls digits-quick whole features head lp-ft-10 -->

(the controls' folder, the benchmark, then each row's key of scripts/controls_report.py's ROWS):
local, global_balanced and distortion_own, bold where significant after Holm over the benchmark's
tested comparisons, as controls/report.md has them; the rows' label cells are kept.

Without --check the README is rewritten in place; with --check nothing is written and the exit
status says whether every table already is what its cells give (1, with the first difference, if
not). --figure PNG also draws the decision-table markers' benchmarks in one figure
(both rules, local and global_balanced).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import sys
from pathlib import Path

from pftlab.core.io import atomic_write_text
from pftlab.study.decision import Comparison, by_rule, decide, paired, read_clients, with_average

METRICS = {"local": "local", "global_balanced": "global", "average_balanced": "average"}
NAMES = {
    "global-model": "global model",
    "ft": "FT",
    "lp": "LP",
    "lp-ft-kumar": "Kumar's LP-FT",
    "proximal-ft": "Proximal FT",
    "sparse-ft": "Sparse FT",
    "soup-ft": "Soup FT",
    "lss-ft": "LSS FT",
    "wise-ft": "WiSE-FT",
    "surgical-ft": "surgical FT",
    "flood-ft": "flood FT",
    "fedper": "FedPer",
    "fedrep": "FedRep",
    "ditto": "Ditto",
}
HEADER = ["| LP-FT minus | local | global_balanced | average_balanced | verdict |", "|---|---|---|---|---|"]
MARKER = re.compile(r"^<!-- decision-(table|rows|diffs|controls) (.+) -->$")
RULES = ("local", "cross-site")
PAIR_METRICS = ("local", "global_balanced")
PER_BAND = 4  # benchmarks per band of the figure


def number(x: float, sign: bool = False) -> str:
    """As the README writes it: two decimals, a typographic minus."""
    return (f"{x:+.2f}" if sign else f"{x:.2f}").replace("-", "−")


def verdict(verdicts: dict[str, str]) -> str:
    """One phrase for a row: the metrics grouped by their verdict, in the table's order."""
    groups: dict[str, list[str]] = {}
    for metric, word in verdicts.items():
        if word != "no difference":
            groups.setdefault(word, []).append(METRICS[metric])
    if not groups:
        return "no difference"
    return "LP-FT " + ", ".join(f"{word} on {' and '.join(ms)}" for word, ms in groups.items())


def relabelled(line: str, cells: list[str]) -> str:
    """A table row with its leading label cells kept and its last len(cells) cells replaced."""
    labels = line.strip("|").split("|")[: -len(cells)]
    return "|" + "|".join(labels) + "| " + " | ".join(cells) + " |"


@functools.cache  # a study's comparisons serve several tables and the figure: computed once
def comparisons(study: Path, benchmark: str, rule: str) -> list[Comparison]:
    """LP-FT against every method of one benchmark and choice rule, from a published study's cells."""
    record = json.loads((study / "study.json").read_text())
    if benchmark not in record["benchmarks"] or rule not in record["choice_rules"]:
        raise SystemExit(
            f"decision_table: {study} has benchmarks {record['benchmarks']} and rules {record['choice_rules']}; "
            f"asked for {benchmark} under {rule}"
        )
    rules = record["choice_rules"]
    runs = study / "runs" / benchmark
    return decide({s: by_rule(read_clients(runs / f"seed{s}" / "clients.csv"), rules, rule) for s in record["seeds"]})


def table(found: list[Comparison], methods: list[str]) -> list[str]:
    """The markdown table (header included) of LP-FT minus each of `methods`."""
    by = {(c.method, c.metric): c for c in found}
    lines = list(HEADER)
    for method in methods:
        if (method, "local") not in by:
            allowed = ", ".join(dict.fromkeys(c.method for c in found))
            raise SystemExit(f"decision_table: no comparison with {method}; methods: {allowed}")
        cells = [by[method, m] for m in METRICS]
        shown = [f"{number(c.diff, True)} [{number(c.low)}, {number(c.high)}]" for c in cells]
        words = verdict({m: c.verdict for m, c in zip(METRICS, cells, strict=True)})
        lines.append(f"| {NAMES.get(method, method)} | {' | '.join(shown)} | {words} |")
    return lines


def pair(c: Comparison) -> str:
    """One comparison as a regime table shows it: the verdict only where there is a difference."""
    shown = f"{number(c.diff, True)} [{number(c.low)}, {number(c.high)}]"
    return shown if c.verdict == "no difference" else f"{shown} {c.verdict}"


def rows(old: list[str], root: Path, method: str, columns: str, sources: list[str]) -> list[str]:
    """A regime table's rows, one study per row: LP-FT minus `method`, local / global_balanced under
    both choice rules, laid out with the rules in the cell and a column per metric
    (`columns` = metrics) or the metrics in the cell and a column per rule (`columns` = rules). The
    rows' leading label cells are kept as written."""
    if columns not in ("metrics", "rules"):
        raise SystemExit(f"decision_table: decision-rows columns {columns!r}; allowed: metrics, rules")
    head, body = old[:2], old[2:]
    if len(body) != len(sources):
        raise SystemExit(f"decision_table: a decision-rows marker names {len(sources)} studies for {len(body)} rows")
    out = list(head)
    for line, source in zip(body, sources, strict=True):
        study, _, benchmark = source.partition(":")
        found = {r: {(c.method, c.metric): c for c in comparisons(root / study, benchmark, r)} for r in RULES}
        if (method, "local") not in found[RULES[0]]:
            raise SystemExit(f"decision_table: no comparison with {method} in {study}")
        if columns == "metrics":
            cells = [" / ".join(pair(found[r][method, m]) for r in RULES) for m in PAIR_METRICS]
        else:
            cells = [" / ".join(pair(found[r][method, m]) for m in PAIR_METRICS) for r in RULES]
        out.append(relabelled(line, cells))
    return out


def diffs(old: list[str], root: Path, study: str, benchmark: str, pairs: list[str]) -> list[str]:
    """A table of paired differences A - B within one study, one row per `A:B` pair: local and
    global_balanced under the local choice, the cross-site choice's in brackets. Student's t over the
    seeds' means (pftlab.study.decision.paired), not adjusted, no verdict; except where A is LP-FT,
    whose rows are the report's comparisons with their Holm verdict. The rows' label cells are kept."""
    head, body = old[:2], old[2:]
    if len(body) != len(pairs):
        raise SystemExit(f"decision_table: a decision-diffs marker names {len(pairs)} pairs for {len(body)} rows")
    record = json.loads((root / study / "study.json").read_text())
    runs, rules = root / study / "runs" / benchmark, record["choice_rules"]
    tables = [with_average(read_clients(runs / f"seed{s}" / "clients.csv")) for s in record["seeds"]]
    cells: dict[tuple[str, str], list[str]] = {}
    for rule in RULES:
        chosen = [by_rule(t, rules, rule) for t in tables]
        decided = {(c.method, c.metric): c for c in comparisons(root / study, benchmark, rule)}
        for a, _, b in (p.partition(":") for p in pairs):
            for metric in PAIR_METRICS:
                if any(a not in t or b not in t for t in chosen):
                    raise SystemExit(f"decision_table: {study} has no {a} or no {b} under the {rule} choice")
                if a == "lp-ft":
                    shown = pair(decided[b, metric])
                else:
                    r = paired([t[a][metric] for t in chosen], [t[b][metric] for t in chosen])
                    shown = f"{number(r.diff, True)} [{number(r.low)}, {number(r.high)}]"
                cells.setdefault((f"{a}:{b}", metric), []).append(shown)
    out = list(head)
    for line, p in zip(body, pairs, strict=True):
        both = [f"{mine} ({theirs})" for mine, theirs in (cells[p, m] for m in PAIR_METRICS)]
        out.append(relabelled(line, both))
    return out


def controls(old: list[str], root: Path, benchmark: str, keys: list[str]) -> list[str]:
    """The controls' differences A - B (scripts/controls_report.py: its rows, statistics and Holm
    family), one row per key of its ROWS, in the README's number format; label cells kept."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("controls_report", Path(__file__).with_name("controls_report.py"))
    assert spec and spec.loader
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    head, body = old[:2], old[2:]
    if len(body) != len(keys):
        raise SystemExit(f"decision_table: a decision-controls marker names {len(keys)} rows for {len(body)} rows")
    if unknown := [k for k in keys if k not in report.ROWS]:
        raise SystemExit(f"decision_table: no control row {unknown[0]!r}; rows: {', '.join(report.ROWS)}")
    data, seeds = report.studies(root, benchmark)
    if not seeds:
        raise SystemExit(f"decision_table: no seed of {benchmark} finished in all three controls studies under {root}")
    found = report.differences(data, seeds)
    out = list(head)
    for line, key in zip(body, keys, strict=True):
        cells = []
        for r, p in found[key]:
            if math.isnan(r.p):  # no spread across seeds: not tested
                cells.append(f"{number(r.diff, True)} (not tested)")
                continue
            mark = "**" if report.significant(r, p) else ""
            cells.append(f"{mark}{number(r.diff, True)} [{number(r.low)}, {number(r.high)}]{mark}")
        out.append(relabelled(line, cells))
    return out


def refresh(text: str, root: Path) -> str:
    """`text` with the table under every marker rewritten from its studies' cells (folders relative to `root`)."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        out.append(lines[i])
        marker = MARKER.match(lines[i])
        i += 1
        if not marker:
            continue
        start = i
        while i < len(lines) and lines[i].startswith("|"):  # the old table, replaced
            i += 1
        kind, words = marker.group(1), marker.group(2).split()
        if kind == "table":
            study, benchmark, rule, *methods = words
            out.extend(table(comparisons(root / study, benchmark, rule), methods))
        elif kind == "rows":
            method, columns, *sources = words
            out.extend(rows(lines[start:i], root, method, columns, sources))
        elif kind == "controls":
            folder, benchmark, *keys = words
            out.extend(controls(lines[start:i], root / folder, benchmark, keys))
        else:
            study, benchmark, *pairs = words
            out.extend(diffs(lines[start:i], root, study, benchmark, pairs))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def figure(text: str, root: Path, path: Path) -> None:
    """The main decision at a glance: per benchmark (a decision-table marker), LP-FT minus every
    method its study compares on local and global_balanced (one row per method across panels), the
    95% interval under both choice rules (local: circle, cross-site: square), green where LP-FT is
    significantly better, red where worse, grey otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pftlab.core.io import write_png

    panels = []
    for line in text.splitlines():
        marker = MARKER.match(line)
        if marker and marker.group(1) == "table":
            study, benchmark = marker.group(2).split()[:2]
            found = {r: {(c.method, c.metric): c for c in comparisons(root / study, benchmark, r)} for r in RULES}
            seeds = len(json.loads((root / study / "study.json").read_text())["seeds"])
            # a study of a benchmark cut to size says so in its folder's name (main/mnist-writers-20)
            name = Path(study).name if Path(study).name.startswith(benchmark) else benchmark
            panels.append((f"{name} ({seeds} seeds)", found))
    if not panels:
        raise SystemExit("decision_table: no decision-table marker to draw")
    # every method any panel compares, in one order, so that a row is the same method across panels
    present = {m for _, found in panels for r in RULES for m, _ in found[r]}
    methods = [m for m in NAMES if m in present] + sorted(present - set(NAMES))
    colors = {"better": "#1a9850", "worse": "#d73027"}
    rows = len(methods)
    # benchmarks side by side, at most PER_BAND to a band; more wrap into bands below, evenly filled
    bands = -(-len(panels) // PER_BAND)
    width = -(-len(panels) // bands)
    grid = (bands * len(PAIR_METRICS), width)
    height = (0.32 * rows + 0.8) * grid[0] + 0.5
    fig, axes = plt.subplots(*grid, figsize=(3.6 * width + 1.2, height), squeeze=False)
    for k in range(len(panels), bands * width):  # the last band's empty places
        for m in range(len(PAIR_METRICS)):
            axes[(k // width) * len(PAIR_METRICS) + m][k % width].set_visible(False)
    for k, (title, found) in enumerate(panels):
        band, col = divmod(k, width)
        for m, metric in enumerate(PAIR_METRICS):
            row = band * len(PAIR_METRICS) + m
            ax = axes[row][col]
            ax.axvline(0, color="black", lw=0.8)
            for y, method in enumerate(methods):
                for offset, rule, shape in ((-0.17, RULES[0], "o"), (0.17, RULES[1], "s")):
                    c = found[rule].get((method, metric))
                    if c is None:  # not in this benchmark's study
                        continue
                    color = colors.get(c.verdict, "#7f7f7f")
                    ax.plot([c.low, c.high], [y + offset] * 2, color=color, lw=1.6)
                    ax.plot([c.diff], [y + offset], shape, color=color, ms=4)
            ax.set_yticks(range(len(methods)), [NAMES.get(m, m) for m in methods] if col == 0 else [])
            ax.set_ylim(len(methods) - 0.5, -0.5)
            ax.grid(axis="x", color="#dddddd", lw=0.6)
            ax.set_title(f"{title}: {metric}", fontsize=9)
            if m == len(PAIR_METRICS) - 1:
                ax.set_xlabel("LP-FT minus the method (points)", fontsize=8)
            ax.tick_params(labelsize=8)
    fig.suptitle(
        "LP-FT against each method after equal tuning (95% interval over seeds)\ncircle: local choice, square: "
        "cross-site choice; green / red: LP-FT significantly better / worse after Holm",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / height))  # room for the title
    write_png(path, fig)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", nargs="?", default="docs/study/README.md", type=Path)
    parser.add_argument("--figure", type=Path, metavar="PNG", help="also draw the decision-table markers' tables")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a table is not what its cells give"
    )
    args = parser.parse_args(argv)
    if args.check and args.figure:
        parser.error("--check writes nothing: leave out --figure")
    text = args.readme.read_text()
    if not any(MARKER.match(line) for line in text.splitlines()):
        raise SystemExit(f"decision_table: no <!-- decision-table|rows|diffs|controls ... --> marker in {args.readme}")
    new = refresh(text, args.readme.parent)
    if args.check:
        if new == text:
            return 0
        a, b = next(((a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=False) if a != b), ("", ""))
        print(f"{args.readme}: a table reads\n  {a}\nbut its cells give\n  {b}", file=sys.stderr)
        return 1
    if new != text:
        atomic_write_text(args.readme, new)
    if args.figure:
        figure(new, args.readme.parent, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
