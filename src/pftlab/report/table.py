"""The summary as a table: rich for the terminal, Markdown for files and the README."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

# The headline global accuracy is global_balanced (the paper's Global: the uniform mixture of the other
# clients); pooled global comes second. local_min is the worst-off client's own accuracy.
COLUMNS = (
    "local",
    "global_balanced",
    "global",
    "local_min",
    "worst",
    "global_std",
    "c_std",
    "average_balanced",
    "average",
    "average3",
)
TERMINAL = ("local", "global_balanced", "global", "local_min", "worst", "average_balanced")  # 80 columns
SHORT = {"global_balanced": "global_bal", "average_balanced": "avg_bal"}  # keeps the terminal table within 80 columns
SPREADS = ("c_std", "global_std")  # stds over clients: shown plain


def summary_table(summary: dict[str, Any]) -> Table:
    """One row per method; each metric with ± half its 95% interval (across clients and, in sampled
    mode, sampled images) where the summary states one: then global_balanced is left to
    summary.json, for 80 columns (the terminal shows TERMINAL's columns; the files hold every one)."""
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
    columns = TERMINAL
    table.add_column("method", no_wrap=True)
    for col in columns:
        table.add_column(SHORT.get(col, col), justify="right", no_wrap=True)
    for method, m in summary["methods"].items():
        stated = summary.get("intervals", {}).get(method, {})
        table.add_row(method, *(_cell(m[c], stated.get(c), c) if c in m else "" for c in columns))
    return table


def _cell(value: float, stated: dict[str, Any] | None, column: str) -> str:
    if stated is None or column in SPREADS:
        return f"{value:.2f}"
    return f"{value:.1f}±{stated['ci95'][1] - value:.1f}"


def _title(agg: dict[str, Any]) -> str:
    seeds = ", ".join(map(str, agg["seeds"]))
    return f"{agg['benchmark']}: {agg['num_clients']} clients, seeds {seeds}: mean ± std (accuracy %)"


def aggregate_table(agg: dict[str, Any]) -> Table:
    """The terminal's 80 columns hold six mean ± std columns; aggregate.md has every column."""
    columns = TERMINAL
    table = Table(title=_title(agg), box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("method", no_wrap=True)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    for method, m in agg["methods"].items():
        table.add_row(method, *(f"{m[c]['mean']:.1f}±{m[c]['std']:.1f}" if c in m else "" for c in columns))
    return table


def aggregate_markdown(agg: dict[str, Any]) -> str:
    lines = [f"{_title(agg)}", "", "| method | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for method, m in agg["methods"].items():
        cells = (f"{m[c]['mean']:.2f} ± {m[c]['std']:.2f}" if c in m else "" for c in COLUMNS)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
