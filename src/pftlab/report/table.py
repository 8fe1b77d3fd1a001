"""The summary as a table: rich for the terminal, Markdown for files and the README."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

COLUMNS = ("local", "global", "global_balanced", "worst", "c_std", "average", "average3")
SHORT = {"global_balanced": "global_bal"}  # keeps the terminal table within 80 columns


def summary_table(summary: dict[str, Any]) -> Table:
    """One row per method; each metric with ± half its 95% interval (across clients and, in sampled
    mode, sampled images) where the summary states one: then global_balanced is left to
    summary.json, for 80 columns."""
    evaluation = summary.get("evaluation", {})
    sampled = evaluation.get("mode") == "sampled"
    caption = None
    if "intervals" in summary:
        caption = "± half the 95% interval (clients" + (" and sampled images" if sampled else "") + ")"
        if sampled:
            caption += f"; {evaluation['sample_images']} of {evaluation['pool_images']} test images sampled"
            caption += f", worst over {len(evaluation['sample_clients'])} clients (the full worst may be lower)"
    table = Table(
        title=f"{summary['benchmark']}: {summary['num_clients']} clients, seed {summary['seed']} (accuracy %)",
        caption=caption,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    columns = COLUMNS if "intervals" not in summary else [c for c in COLUMNS if c != "global_balanced"]
    table.add_column("method", no_wrap=True)
    for col in columns:
        table.add_column(SHORT.get(col, col), justify="right", no_wrap=True)
    for method, m in summary["methods"].items():
        stated = summary.get("intervals", {}).get(method, {})
        table.add_row(method, *(_cell(m[c], stated.get(c), c) for c in columns))
    return table


def _cell(value: float, stated: dict[str, Any] | None, column: str) -> str:
    if stated is None or column == "c_std":
        return f"{value:.2f}"
    return f"{value:.1f}±{stated['ci95'][1] - value:.1f}"


def _title(agg: dict[str, Any]) -> str:
    seeds = ", ".join(map(str, agg["seeds"]))
    return f"{agg['benchmark']}: {agg['num_clients']} clients, seeds {seeds}: mean ± std (accuracy %)"


def aggregate_table(agg: dict[str, Any]) -> Table:
    """The terminal's 80 columns hold six mean ± std columns; aggregate.md has global_balanced too."""
    columns = [c for c in COLUMNS if c != "global_balanced"]
    table = Table(title=_title(agg), box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("method", no_wrap=True)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    for method, m in agg["methods"].items():
        table.add_row(method, *(f"{m[c]['mean']:.1f}±{m[c]['std']:.1f}" for c in columns))
    return table


def aggregate_markdown(agg: dict[str, Any]) -> str:
    lines = [f"{_title(agg)}", "", "| method | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for method, m in agg["methods"].items():
        lines.append(f"| {method} | " + " | ".join(f"{m[c]['mean']:.2f} ± {m[c]['std']:.2f}" for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"
