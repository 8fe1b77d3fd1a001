"""The Decision tables of docs/study/README.md, computed from the published cells.

Usage: python scripts/decision_table.py [--check] [README, default docs/study/README.md]

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
cells are rewritten and the rows' label cells kept. Without --check the README is
rewritten in place; with --check nothing is written and the exit status says whether every table
already is what its cells give (1, with the first difference, if not).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from pftlab.core.io import atomic_write_text
from pftlab.study.decision import Comparison, by_rule, decide, read_clients

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
MARKER = re.compile(r"^<!-- decision-(table|rows) (.+) -->$")
RULES = ("local", "cross-site")
PAIR_METRICS = ("local", "global_balanced")


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
        labels = line.strip("|").split("|")[: -len(cells)]
        out.append("|" + "|".join(labels) + "| " + " | ".join(cells) + " |")
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
        else:
            method, columns, *sources = words
            out.extend(rows(lines[start:i], root, method, columns, sources))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", nargs="?", default="docs/study/README.md", type=Path)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a table is not what its cells give"
    )
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    if not any(MARKER.match(line) for line in text.splitlines()):
        raise SystemExit(f"decision_table: no <!-- decision-table|decision-rows ... --> marker in {args.readme}")
    new = refresh(text, args.readme.parent)
    if args.check:
        if new == text:
            return 0
        a, b = next(((a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=False) if a != b), ("", ""))
        print(f"{args.readme}: a table reads\n  {a}\nbut its cells give\n  {b}", file=sys.stderr)
        return 1
    if new != text:
        atomic_write_text(args.readme, new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
