"""report.html: one self-contained page (verdicts, linked tables, SVG figures, heatmaps), parsed here and
rendered in a real headless browser when one is installed."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pftlab.experiment.aggregate import aggregate
from pftlab.study.html import MAX_CLIENTS, render_html, write_html
from pftlab.study.report import Results, write_report

PUBLISHED = Path(__file__).parents[2] / "docs" / "study" / "runs" / "heart"
TOY_CLIENTS = MAX_CLIENTS + 5  # more than the heatmap shows
ODD = "x<y&z"  # a method name that must be escaped
KEYS = ("benchmark", "rule", "method", "metric", "diff", "low", "high", "p_adjusted", "verdict")
DECISION: list[dict[str, Any]] = [
    dict(zip(KEYS, row, strict=True))
    for row in (
        ("toy", "global", "ft", "global", 2.5, 1.0, 4.0, 0.004, "better"),
        ("toy", "average3", ODD, "average3", -1.25, -2.0, -0.5, 0.03, "worse"),
        ("heart", "global", "ft", "global", 0.32, -0.5, 1.1, 0.6, "no difference"),
        ("heart", "global", "fedper", "distortion_own", None, math.nan, math.nan, None, "not tested"),
    )
]
VOID = {"meta", "link", "br", "img", "hr", "input", "wbr", "col", "source"}


def toy_summary(seed: int) -> dict[str, Any]:
    methods = {}
    for k, m in enumerate(("global-model", "ft", "lp-ft", ODD)):
        local, glob = 70.0 + 3 * k + seed, 80.0 - 2 * k - 0.5 * seed
        worst = glob - 10
        average, average3 = (local + glob) / 2, (local + glob + worst) / 3
        methods[m] = {"local": local, "global": glob, "worst": worst, "average": average, "average3": average3}
    return {"benchmark": "toy", "seed": seed, "num_clients": TOY_CLIENTS, "methods": methods}


def matrix_value(m: int, i: int, j: int) -> float:
    return round(20.0 + m * 5 + (i * 7 + j * 3) % 50 + (15.0 if i == j else 0.0), 4)


def make_study(out: Path) -> Results:
    """A study folder: 'toy' (hand-made summaries, clients.csv and matrices for seed 0) and 'heart' (two
    published cells, no clients.csv)."""
    toy = out / "runs" / "toy"
    for s in (0, 1):
        (toy / f"seed{s}").mkdir(parents=True)
        (toy / f"seed{s}" / "summary.json").write_text(json.dumps(toy_summary(s)))
    with (toy / "seed0" / "clients.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "client", "domain", "n_train", "n_test", "local", "global", "global_balanced", "worst"])
        for k, m in enumerate(("global-model", "ft", "lp-ft", ODD)):
            for c in range(TOY_CLIENTS):
                local = 60.0 + c % 7 + (3 * k if c % 3 else -4 * k)  # every third client loses locally
                w.writerow([m, c, f"dom{c % 4}", 100, 20, local, 70.0 - k, 70.0 - k * (c % 2), 50.0])
    for k, m in enumerate(("global-model", "ft", "lp-ft")):
        (toy / "seed0" / "matrices").mkdir(exist_ok=True)
        with (toy / "seed0" / "matrices" / f"{m}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["model \\ test", *(f"client{j}" for j in range(TOY_CLIENTS))])
            for i in range(TOY_CLIENTS):
                w.writerow([f"client{i}", *(matrix_value(k, i, j) for j in range(TOY_CLIENTS))])
    heart = [json.loads((PUBLISHED / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
    for s in (0, 1):
        shutil.copytree(PUBLISHED / f"seed{s}", out / "runs" / "heart" / f"seed{s}")
    aggs = {"toy": aggregate([toy_summary(0), toy_summary(1)]), "heart": aggregate(heart)}
    return Results(aggs, {"cifar10c": "no data files"}, {"toy": 1.0}, quick=True, commit="abc1234", unverified=True)


class Page(HTMLParser):
    """Checks that every element closes in order; collects links, title attributes, text and SVG titles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.hrefs: list[str] = []
        self.titles: list[str] = []
        self.svg_titles: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")
        if a.get("title"):
            self.titles.append(a["title"] or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "title" and "svg" in self.stack:
            self.svg_titles.append(data)
        self.text.append(data)


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    assert not p.errors, p.errors[:5]
    assert p.stack == [], p.stack
    return p


def test_page_parses_links_hovers_verdicts_heatmaps(tmp_path: Path) -> None:
    out = tmp_path / "study"
    r = make_study(out)
    page = render_html(r, out, DECISION)
    p = parse(page)
    text = " ".join(p.text)
    for tag in ("table", "svg", "section"):
        assert p.counts.get(tag, 0) > 0, tag
    # self-contained: nothing to fetch, no scripts
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "src=" not in page and "@import" not in page
    # what ran
    assert "(quick)" in text and "abc1234" in text and "unverified" in text and "cifar10c: no data files" in text
    # verdicts, coloured
    for word in ("better", "worse", "no difference", "not tested"):
        assert f'<span class="v-{word.replace(" ", "-")}">{word}</span>' in page  # the legend
        assert f'<td class="v-{word.replace(" ", "-")}" title="p adjusted' in page  # a cell of that verdict
    assert "+2.50" in text and "[+1.00, +4.00]" in text and "p adjusted 0.004: better" in p.titles
    assert "[–, –]" not in text and "nan" not in text.lower()
    # tables: every mean links to its runs, per-seed values on hover, per-seed summary.json links
    assert "runs/toy/" in p.hrefs and "runs/heart/" in p.hrefs
    assert {f"runs/{b}/seed{s}/summary.json" for b in ("toy", "heart") for s in (0, 1)} <= set(p.hrefs)
    assert "seed 0: 73.00; seed 1: 74.00" in p.titles  # ft's local over the two toy seeds
    heart_ft = [json.loads((PUBLISHED / f"seed{s}" / "summary.json").read_text())["methods"]["ft"] for s in (0, 1)]
    assert f"seed 0: {heart_ft[0]['global']:.2f}; seed 1: {heart_ft[1]['global']:.2f}" in p.titles
    # escaped everywhere: the odd method name is text, never markup
    assert ODD in text and "x&lt;y&amp;z" in page and ODD not in page
    # who loses: from clients.csv where there is one, a note where there is none
    assert "Who loses when a method personalises" in text
    assert f"local: {len(range(0, TOY_CLIENTS, 3))} of {TOY_CLIENTS} lose" in text  # ft: clients 0, 3, 6, ...
    assert "No clients.csv" in text
    # heatmaps: the three matrices, capped, labelled with domains, values on hover, scale fitted to what is shown
    assert all(f">{m}</h4>" in page for m in ("global-model", "ft", "lp-ft"))
    assert f"{TOY_CLIENTS} clients: the first {MAX_CLIENTS} shown" in text
    cells = [t for t in p.svg_titles if t.startswith("model of ")]
    assert len(cells) == 3 * MAX_CLIENTS * MAX_CLIENTS
    assert f"model of client1 (dom1) on the test set of client2 (dom2): {matrix_value(0, 1, 2):.2f}%" in cells
    shown = [matrix_value(0, i, j) for i in range(MAX_CLIENTS) for j in range(MAX_CLIENTS)]
    assert f">{min(shown):.1f}%</text>" in page and f">{max(shown):.1f}%</text>" in page
    assert "client44" not in page.split("<h4>global-model</h4>")[1].split("</svg>")[0]  # capped
    # without a decision: no verdict section
    assert "Verdicts" not in render_html(r, out, None)


def test_write_html_and_write_report(tmp_path: Path) -> None:
    out = tmp_path / "study"
    r = make_study(out)
    write_html(out, r, DECISION)
    assert (out / "report.html").read_text(encoding="utf-8") == render_html(r, out, DECISION)
    write_report(out, r)  # report.md and the rest; report.html is write_html's
    assert (out / "report.md").is_file()
    write_html(out, r, None)
    assert "Verdicts" not in (out / "report.html").read_text(encoding="utf-8")
    write_html(out, r, DECISION)
    parse((out / "report.html").read_text(encoding="utf-8"))
    assert "Verdicts" in (out / "report.html").read_text(encoding="utf-8")


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


def headless(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless run in its own profile; the timeout only guards against a hung browser."""
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
    ]
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


MIN_PNG_BYTES = 60_000  # this page at 1280 x 2000: about 200 kB; a blank page: about 12 kB; a line of text: 15 kB


@pytest.mark.browser
def test_report_renders_in_headless_browser(tmp_path: Path) -> None:
    exe = browser()
    if exe is None:
        if os.environ.get("PFTLAB_REQUIRE_BROWSER") == "1":
            pytest.fail("PFTLAB_REQUIRE_BROWSER=1 but no chromium, chromium-browser or google-chrome on PATH")
        pytest.skip("no headless browser (chromium, chromium-browser, google-chrome) on PATH")
    out = tmp_path / "study"
    write_html(out, make_study(out), DECISION)
    url = (out / "report.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    headless(exe, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (1280, 2000)
    assert len(data) > MIN_PNG_BYTES, f"{len(data)} bytes: a nearly blank page"
    from PIL import Image  # pillow: a dependency of pftlab

    with Image.open(shot) as im:
        colors = {c for _, c in im.convert("RGB").getcolors(maxcolors=1 << 22) or []}
    assert (0xC8, 0xEC, 0xC8) in colors and (0xF5, 0xC2, 0xC2) in colors  # the verdict cells' CSS backgrounds
    dom = headless(exe, tmp_path, "--dump-dom", url).stdout
    for rendered in ("toy", "heart", "better", "no difference", "lp-ft", "x&lt;y&amp;z", "<svg", "Who loses"):
        assert rendered in dom, rendered
