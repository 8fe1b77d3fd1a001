"""report.html: the study's report as one self-contained page (inline CSS and SVG, no scripts, no network).

What ran, the decision's verdicts, and per benchmark its table (every number links to the runs it
comes from, the per-seed values on hover), local vs global per method, who loses when a method
personalises (per client, from clients.csv) and cross-client accuracy heatmaps (matrices/*.csv).
"""

from __future__ import annotations

import csv
import html
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pftlab.core.io import atomic_write_text
from pftlab.data.benchmarks import BENCHMARKS
from pftlab.study.report import HIGHER_BETTER, REFERENCE, TABLE, Agg, Results, measured, methods_of

HEAT_METHODS = (REFERENCE, "ft", "lp-ft")  # the heatmaps drawn, those present
MAX_CLIENTS = 40  # a larger matrix shows its first 40 rows and columns
VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th:first-child,td:first-child,td.t{text-align:left}
th{background:#f0f0f0;text-align:center}
a{color:#1a4f8b;text-decoration:none} a:hover{text-decoration:underline} td.best a{font-weight:bold}
.v-better{background:#c8ecc8} .v-worse{background:#f5c2c2} .v-no-difference{background:#e4e4e4}
.v-not-tested{color:#888;font-style:italic} span[class^="v-"]{padding:0 .3em}
.note{color:#666;font-size:.9em}
svg{display:block;margin:.5em 0;font-size:11px}
section{border-top:2px solid #ddd;margin-top:1.5em}
"""
Row = dict[str, str]
VERDICTS = ("better", "worse", "no difference", "not tested")  # LP-FT against the method


def esc(x: object) -> str:
    return html.escape(str(x))


def num(x: Any, fmt: str = ".2f") -> str:
    """A number formatted, or '–' when missing or not finite."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    return format(v, fmt) if math.isfinite(v) else "–"


def read_csv(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.reader(f))
    except OSError:
        return []


def as_float(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return math.nan


def header(r: Results) -> str:
    methods = list(dict.fromkeys(m for a in r.aggs.values() for m in a["methods"]))
    seeds = next(iter(r.aggs.values()))["seeds"]
    kind = "quick" if r.quick else "full"
    parts = [
        f"<h1>The reproduction study ({kind})</h1>",
        f"<p>{len(r.aggs)} benchmarks ({esc(', '.join(r.aggs))}) × {len(methods)} methods "
        f"({esc(', '.join(methods))}) × seeds {esc(', '.join(map(str, seeds)))}, "
        f"{'quick sizes and a short schedule: a pipeline check, not evidence' if r.quick else 'default sizes'}; "
        f"written at commit <code>{esc(r.commit)}</code>. Accuracy %, mean ± sample std over seeds. Every number "
        "links to the runs it comes from; hover over it for the per-seed values.</p>",
    ]
    if r.unverified:
        parts.append(
            '<p class="note">unverified: written with <code>--report-only</code> from each cell\'s summary.json '
            "as it is, neither recomputed nor verified against the cell's run key.</p>"
        )
    if r.skipped:
        items = "".join(f"<li>{esc(n)}: {esc(why)}</li>" for n, why in r.skipped.items())
        parts.append(f"<p>Skipped:</p><ul>{items}</ul>")
    return "\n".join(parts)


def decision_table(rows: list[dict[str, Any]]) -> str:
    """Per benchmark (and choice rule): methods x metrics, each cell LP-FT minus the method with its
    interval on hover and its verdict as the cell's colour."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in rows:
        groups.setdefault((str(d.get("benchmark", "")), str(d.get("rule", ""))), []).append(d)
    parts = [
        "<h2>Verdicts</h2><p>LP-FT minus each method in accuracy points, paired on the same clients, test images "
        "and seeds, with its 95% interval (Student's t over seeds; one seed: a bootstrap over clients); hover a "
        "cell for its Holm-adjusted p-value. The colour is the verdict at the 95% level after Holm's correction "
        "over the table: " + ", ".join(f'<span class="v-{w.replace(" ", "-")}">{w}</span>' for w in VERDICTS) + ".</p>"
    ]
    for (bench, rule), items in groups.items():
        metrics = list(dict.fromkeys(str(d.get("metric", "")) for d in items))
        by = {(str(d.get("method", "")), str(d.get("metric", ""))): d for d in items}
        head = "".join(f"<th>{esc(m)}</th>" for m in metrics)
        body = []
        for method in dict.fromkeys(str(d.get("method", "")) for d in items):
            cells = []
            for metric in metrics:
                found = by.get((method, metric))
                if found is None:
                    cells.append("<td></td>")
                    continue
                v = str(found.get("verdict", "not tested"))
                low, high = num(found.get("low"), "+.2f"), num(found.get("high"), "+.2f")
                interval = "" if low == high == "–" else f" <small>[{low}, {high}]</small>"
                tip = f"p adjusted {num(found.get('p_adjusted'), '.3g')}: {v}"
                cells.append(
                    f'<td class="v-{esc(v.replace(" ", "-"))}" title="{esc(tip)}">'
                    f"{num(found.get('diff'), '+.2f')}{interval}</td>"
                )
            body.append(f'<tr><td class="t">{esc(method)}</td>{"".join(cells)}</tr>')
        title = esc(bench) + (f", {esc(rule)} choice" if rule else "")
        parts.append(
            f"<h3>{title}</h3><table><thead><tr><th>method</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    return "\n".join(parts)


def metric_table(name: str, agg: Agg) -> str:
    shown = [k for k in TABLE if any(k in v for v in agg["methods"].values())]
    ms = agg["methods"]
    best = {k: max((ms[m][k]["mean"] for m in methods_of(agg) if k in ms[m]), default=math.nan) for k in shown}
    seeds = agg["seeds"]
    rows = []
    for method, values in ms.items():
        cells = []
        for k in shown:
            v = values.get(k)
            if v is None or not measured(method, k):
                cells.append("<td></td>")
                continue
            d = 3 if k.startswith("distortion") else 2
            hover = "; ".join(f"seed {s}: {x:.{d}f}" for s, x in zip(seeds, v.get("values", []), strict=False))
            cls = ' class="best"' if method != REFERENCE and k in HIGHER_BETTER and v["mean"] == best[k] else ""
            link = f'<a href="runs/{esc(name)}/" title="{esc(hover)}">{v["mean"]:.{d}f} ± {v["std"]:.{d}f}</a>'
            cells.append(f"<td{cls}>{link}</td>")
        rows.append(f"<tr><td>{esc(method)}</td>{''.join(cells)}</tr>")
    per_seed = " · ".join(f'<a href="runs/{esc(name)}/seed{s}/summary.json">seed {s}</a>' for s in seeds)
    return (
        f"<table><thead><tr><th>method</th>{''.join(f'<th>{esc(k)}</th>' for k in shown)}</tr></thead>"
        f'<tbody>{"".join(rows)}</tbody></table><p class="note">Per seed: {per_seed}. Bold: the best mean.</p>'
    )


def scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    """A linear map from [lo, hi] onto [a, b]."""
    span = hi - lo or 1.0
    return lambda x: a + (x - lo) / span * (b - a)


def ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    raw = (hi - lo) / n or 1.0
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def axes(x0: float, x1: float, y0: float, y1: float, box: tuple[int, int, int, int], xl: str, yl: str) -> str:
    """Frame, grid, tick labels and axis labels of a plot in box = (left, top, right, bottom)."""
    left, top, right, bottom = box
    sx, sy = scale(x0, x1, left, right), scale(y0, y1, bottom, top)
    out = [f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#999"/>']
    for t in ticks(x0, x1):
        out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{bottom}" stroke="#eee"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{bottom + 14}" text-anchor="middle">{t:g}</text>')
    for t in ticks(y0, y1) if yl else []:
        out.append(f'<line x1="{left}" x2="{right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 5}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{(left + right) / 2}" y="{bottom + 32}" text-anchor="middle">{esc(xl)}</text>')
    if yl:
        out.append(f'<text transform="translate({left - 42},{(top + bottom) / 2}) rotate(-90)" text-anchor="middle">')
        out.append(f"{esc(yl)}</text>")
    return "".join(out)


def scatter_svg(name: str, agg: Agg) -> str:
    """Local vs global accuracy per method, error bars = std over seeds; the global model as a star."""
    pts = [(m, v["local"], v["global"]) for m, v in agg["methods"].items() if "local" in v and "global" in v]
    if not pts:
        return ""
    xs = [p[1]["mean"] + s * p[1]["std"] for p in pts for s in (-1, 1)]
    ys = [p[2]["mean"] + s * p[2]["std"] for p in pts for s in (-1, 1)]
    lo, hi = min(xs + ys), max(xs + ys)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    box = (60, 15, 440, 395)
    sx, sy = scale(lo, hi, box[0], box[2]), scale(lo, hi, box[3], box[1])
    out = [axes(lo, hi, lo, hi, box, "local accuracy (%): own test set", "global accuracy (%): other clients")]
    out.append(f'<line x1="{sx(lo)}" y1="{sy(lo)}" x2="{sx(hi)}" y2="{sy(hi)}" stroke="#aaa" stroke-dasharray="3 3"/>')
    for k, (m, loc, glo) in enumerate(pts):
        color = "#000" if m == REFERENCE else f"hsl({k * 137 % 360},70%,{35 + 15 * (k % 2)}%)"  # golden-angle hues
        x, y = sx(loc["mean"]), sy(glo["mean"])
        tip = f"{m}: local {loc['mean']:.2f} ± {loc['std']:.2f}, global {glo['mean']:.2f} ± {glo['std']:.2f}"
        bars = (
            f'<line x1="{sx(loc["mean"] - loc["std"]):.1f}" x2="{sx(loc["mean"] + loc["std"]):.1f}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{color}"/><line x1="{x:.1f}" x2="{x:.1f}" y1="{sy(glo["mean"] - glo["std"]):.1f}" '
            f'y2="{sy(glo["mean"] + glo["std"]):.1f}" stroke="{color}"/>'
        )
        mark = (
            f'<text x="{x:.1f}" y="{y + 6:.1f}" text-anchor="middle" font-size="18">★</text>'
            if m == REFERENCE
            else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color}" stroke="#000"/>'
        )
        out.append(f"<g><title>{esc(tip)}</title>{bars}{mark}</g>")
        out.append(f'<circle cx="460" cy="{24 + 16 * k}" r="5" fill="{color}"/>')
        out.append(f'<text x="470" y="{28 + 16 * k}">{esc(m)}</text>')
    height = max(box[3] + 40, 40 + 16 * len(pts))
    label = f"{name}: local vs global accuracy"
    return f'<svg width="640" height="{height}" role="img" aria-label="{esc(label)}">{"".join(out)}</svg>'


def client_rows(bench: Path, seeds: list[int]) -> dict[int, list[Row]]:
    """clients.csv of every seed that has one, as dicts."""
    out = {}
    for s in seeds:
        rows = read_csv(bench / f"seed{s}" / "clients.csv")
        if len(rows) > 1:
            out[s] = [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
    return out


def changes(per_seed: dict[int, list[Row]]) -> dict[str, dict[str, list[float]]]:
    """Per method and metric (local, global_balanced): each client's (and seed's) value minus the global model's."""
    out: dict[str, dict[str, list[float]]] = {}
    for rows in per_seed.values():
        base = {r["client"]: r for r in rows if r["method"] == REFERENCE}
        for r in rows:
            if r["method"] == REFERENCE or r["client"] not in base:
                continue
            for k in ("local", "global_balanced"):
                d = as_float(r.get(k, "")) - as_float(base[r["client"]].get(k, ""))
                if math.isfinite(d):
                    out.setdefault(r["method"], {}).setdefault(k, []).append(d)
    return out


def strip_svg(name: str, ch: dict[str, dict[str, list[float]]]) -> str:
    """One lane per method: a dot per client and seed, local (blue) and global_balanced (orange) minus the
    global model's, the median as a bar."""
    values = [x for m in ch.values() for xs in m.values() for x in xs]
    if not values:
        return '<p class="note">No per-client values to compare.</p>'
    lo, hi = min(*values, 0.0), max(*values, 0.0)
    pad = (hi - lo) * 0.05 or 1.0
    lane, top = 36, 10
    box = (130, top, 620, top + lane * len(ch))
    sx = scale(lo - pad, hi + pad, box[0], box[2])
    out = [axes(lo - pad, hi + pad, 0, 1, box, "change against the global model (percent points)", "")]
    out.append(f'<line x1="{sx(0):.1f}" x2="{sx(0):.1f}" y1="{box[1]}" y2="{box[3]}" stroke="#000"/>')
    colors = {"local": "#1f77b4", "global_balanced": "#ff7f0e"}
    for i, (m, per) in enumerate(ch.items()):
        y0 = top + lane * i
        loses = {k: sum(x < 0 for x in xs) for k, xs in per.items()}
        lost = " · ".join(f"{k}: {loses[k]} of {len(xs)} lose" for k, xs in per.items())
        out.append(f'<text x="{box[0] - 6}" y="{y0 + lane / 2 + 4}" text-anchor="end">{esc(m)}</text>')
        out.append(f'<text x="{box[2] + 8}" y="{y0 + lane / 2 + 4}">{esc(lost)}</text>')
        for j, (k, xs) in enumerate(per.items()):
            yc = y0 + lane * (0.3 + 0.4 * j)
            for n, x in enumerate(xs):
                jitter = ((n * 37) % 11 - 5) * 0.8
                out.append(
                    f'<circle cx="{sx(x):.1f}" cy="{yc + jitter:.1f}" r="2.2" fill="{colors[k]}" fill-opacity=".45">'
                    f"<title>{esc(m)} {k}: {x:+.2f}</title></circle>"
                )
            med = sorted(xs)[len(xs) // 2]
            out.append(
                f'<line x1="{sx(med):.1f}" x2="{sx(med):.1f}" y1="{yc - 7:.1f}" y2="{yc + 7:.1f}" stroke="#000" '
                f'stroke-width="2"><title>{esc(m)} {k}: median {med:+.2f}</title></line>'
            )
    legend = " ".join(f'<span style="color:{c}">●</span> {k}' for k, c in colors.items())
    aria = f"{name}: per-client change against the global model"
    return (
        f'<p class="note">{legend}; a bar marks the median.</p>'
        f'<svg width="960" height="{box[3] + 40}" role="img" aria-label="{esc(aria)}">{"".join(out)}</svg>'
    )


def color(t: float) -> str:
    """Viridis at t in [0, 1]."""
    if not math.isfinite(t):
        return "#ccc"
    t = min(max(t, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    f = t - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(VIRIDIS[i], VIRIDIS[i + 1], strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(method: str, rows: list[list[str]], domains: dict[str, str], uid: str) -> str:
    """The accuracy matrix: rows = model of client i, columns = test set of client j; scale = min..max shown."""
    names, body = rows[0][1 : MAX_CLIENTS + 1], rows[1 : MAX_CLIENTS + 1]
    grid = [(r[0], [as_float(x) for x in r[1 : MAX_CLIENTS + 1]]) for r in body]
    shown = [x for _, xs in grid for x in xs if math.isfinite(x)]
    if not shown:
        return ""
    lo, hi = min(shown), max(shown)

    def label(c: str) -> str:
        d = domains.get(c.removeprefix("client"), "")
        return f"{c} ({d})" if d else c

    cell = max(8, min(22, 600 // max(len(names), 1)))
    longest = max(len(label(c)) for c in [*names, *(r for r, _ in grid)])  # 11px text: about 6.5px a character
    left, top = 10 + int(6.5 * longest), 10 + int(6.5 * longest * 0.87)  # column labels turn 60 degrees
    out = []
    for j, c in enumerate(names):
        x = left + cell * j + cell / 2
        out.append(f'<text transform="translate({x:.1f},{top - 4}) rotate(-60)">{esc(label(c))}</text>')
    for i, (rname, xs) in enumerate(grid):
        y = top + cell * i
        out.append(f'<text x="{left - 4}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">{esc(label(rname))}</text>')
        for j, (c, x) in enumerate(zip(names, xs, strict=False)):
            edge = ' stroke="#fff" stroke-width="1.5"' if c == rname else ""
            tip = f"model of {label(rname)} on the test set of {label(c)}: {num(x)}%"
            fill = color((x - lo) / ((hi - lo) or 1.0))
            out.append(
                f'<rect x="{left + cell * j}" y="{y}" width="{cell}" height="{cell}" fill="{fill}"{edge}>'
                f"<title>{esc(tip)}</title></rect>"
            )
    w, h = left + cell * len(names), top + cell * len(grid)
    stops = "".join(f'<stop offset="{k / 4:.2f}" stop-color="{color(k / 4)}"/>' for k in range(5))
    legend = (
        f'<defs><linearGradient id="{uid}">{stops}</linearGradient></defs>'
        f'<rect x="{left}" y="{h + 14}" width="200" height="10" fill="url(#{uid})"/>'
        f'<text x="{left}" y="{h + 38}">{lo:.1f}%</text><text x="{left + 200}" y="{h + 38}" text-anchor="end">'
        f"{hi:.1f}%</text>"
    )
    note = (
        f'<p class="note">{len(rows) - 1} clients: the first {MAX_CLIENTS} shown.</p>'
        if len(rows) - 1 > MAX_CLIENTS or len(rows[0]) - 1 > MAX_CLIENTS
        else ""
    )
    return (
        f"<h4>{esc(method)}</h4>{note}"
        f'<svg width="{max(w + 110, left + 220)}" height="{h + 46}" role="img" aria-label="{esc(method)} matrix">'
        f"{''.join(out)}{legend}</svg>"
    )


def benchmark_section(name: str, agg: Agg, out: Path) -> str:
    bench = BENCHMARKS.get(agg["benchmark"])
    runs = out / "runs" / name
    parts = [
        f'<section id="{esc(name)}"><h2>{esc(name)}</h2>',
        f"<p>{esc(bench.shift if bench else agg['benchmark'])}; {agg['num_clients']} clients; seeds "
        f"{esc(', '.join(map(str, agg['seeds'])))}.</p>",
        metric_table(name, agg),
        "<h3>Local vs global accuracy</h3>",
        scatter_svg(name, agg),
        "<h3>Who loses when a method personalises</h3>",
    ]
    per_seed = client_rows(runs, agg["seeds"])
    if per_seed:
        parts.append(
            f"<p>Each client's (and seed's) local and global_balanced accuracy minus the global model's, from "
            f"clients.csv of seed {esc(', '.join(map(str, per_seed)))}; a dot left of 0 is a client that lost.</p>"
        )
        parts.append(strip_svg(name, changes(per_seed)))
    else:
        parts.append('<p class="note">No clients.csv in the run directories (published cells keep summaries only).</p>')
    first = agg["seeds"][0]
    mats = [
        (m, rows) for m in HEAT_METHODS if len(rows := read_csv(runs / f"seed{first}" / "matrices" / f"{m}.csv")) > 1
    ]
    if mats:
        domains = {r["client"]: r.get("domain", "") for r in per_seed.get(first, [])}
        parts.append(
            f"<h3>Cross-client accuracy, seed {first}</h3><p>Row i: the model of client i; column j: client j's test "
            "set (%); the diagonal outlined. Colours span the values shown; hover for each value.</p>"
        )
        uid = "".join(c if c.isalnum() else "-" for c in name)
        parts += [heatmap(m, rows, domains, f"scale-{uid}-{k}") for k, (m, rows) in enumerate(mats)]
    parts.append("</section>")
    return "\n".join(parts)


def render_html(r: Results, out: Path, decision: list[dict[str, Any]] | None = None) -> str:
    """The whole page; links and the runs it reads are relative to `out`, the study folder."""
    body = [header(r)]
    if decision is not None:
        body.append(decision_table(decision))
    body += [benchmark_section(name, agg, Path(out)) for name, agg in r.aggs.items()]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>pftlab study ({'quick' if r.quick else 'full'})</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_html(out: Path, r: Results, decision: list[dict[str, Any]] | None = None) -> None:
    """out/report.html, atomically."""
    atomic_write_text(Path(out) / "report.html", render_html(r, out, decision))
