"""The decisive study's plumbing: --grids tunes every cell, both choice rules reach the report, and the
paired decision in report.md / decision.csv is rebuilt from the cells' clients.csv alone."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from pftlab.core.errors import UserError
from pftlab.study.decision import by_rule, decide, read_clients, with_average
from pftlab.study.plan import read_grids, with_grids
from pftlab.study.run import Request, run_study
from pftlab.study.sweep import in_order

SMALL = ("runtime.threads=1", "data.num_clients=3", "federated.rounds=2", "personalize.epochs=2")
GRIDS = """
[choice]
rules = ["local", "cross-site"]
pool_images = 60

[search.ft]
lr = [0.003, 0.03]

[search.lp-ft]
ft_lr = [0.003, 0.03]

[search.fedper]
lr = [0.01, 0.05]

[search.lss-ft]  # not among the study's methods: left out of every cell
lr = [0.01, 0.05]
"""


def test_grids_tune_every_cell_and_the_decision_rebuilds_from_clients_csv(tmp_path: Path) -> None:
    grids = tmp_path / "grids.toml"
    grids.write_text(GRIDS)
    out = tmp_path / "study"
    methods = ("ft", "lp-ft", "fedper")
    record = run_study(
        Request(
            out, quick=True, seeds=(0, 1), benchmarks=("digits-quick",), methods=methods, overrides=SMALL,
            progress=False, grids=grids,
        )
    )  # fmt: skip
    assert record["choice_rules"] == ["local", "cross-site"] and record["grids"] == str(grids)
    cell = out / "runs" / "digits-quick" / "seed0"
    assert "lss-ft" not in (cell / "config.toml").read_text()
    tables = {s: read_clients(out / "runs" / "digits-quick" / f"seed{s}" / "clients.csv") for s in (0, 1)}
    assert set(tables[0]) == {"global-model", *methods, *(f"{m}@cross-site" for m in methods)}

    rows = list(csv.DictReader((out / "decision.csv").open()))
    local = [r for r in rows if r["benchmark"] == "digits-quick, local choice"]
    cross = [r for r in rows if r["benchmark"] == "digits-quick, cross-site choice"]
    assert {r["method"] for r in local} == {r["method"] for r in cross} == {"global-model", "ft", "fedper"}
    # every number of the decision comes back from the cells' clients.csv
    for rule, written in (("local", local), ("cross-site", cross)):
        again = decide({s: by_rule(with_average(t), ["local", "cross-site"], rule) for s, t in tables.items()})
        assert len(again) == len(written)
        for c, r in zip(again, written, strict=True):
            assert (c.method, c.metric, c.verdict) == (r["method"], r["metric"], r["verdict"])
            assert math.isclose(c.diff, float(r["diff"]), rel_tol=1e-5, abs_tol=1e-6)
    report = (out / "report.md").read_text()
    assert "## Decision" in report and "digits-quick, cross-site choice" in report
    assert "What the cross-site choice changes" in report
    assert "Who loses when a method personalises" in report and "### Compute" in report
    assert "Grid points per method: ft 2, lp-ft 2, fedper 2" in report
    html = (out / "report.html").read_text()
    assert "Verdicts" in html and "cross-site" in html


def test_grids_file_is_checked_and_merged() -> None:
    raw = {"data": {"benchmark": "heart"}, "search": {"ft": {"lr": [0.1]}}}
    grids = {"search": {"ft": {"lr": [0.01, 0.1]}, "lp": {"lr": [1.0]}}, "choice": {"rules": ["cross-site"]}}
    merged = with_grids(raw, grids, ["ft"])
    assert merged["search"] == {"ft": {"lr": [0.01, 0.1]}} and merged["choice"] == {"rules": ["cross-site"]}
    assert raw["search"] == {"ft": {"lr": [0.1]}}  # the benchmark's config is left as it was
    assert read_grids(None) == {}


def test_bad_grids_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "grids.toml"
    bad.write_text("[federated]\nrounds = 3\n")
    with pytest.raises(UserError, match=r"unknown table\(s\) federated; allowed: search, choice"):
        read_grids(bad)
    bad.write_text("[search.lpft]\nft_lr = [0.1]\n")  # a typo: lp-ft would silently keep one setting
    with pytest.raises(UserError, match=r"unknown method\(s\) lpft in \[search\]; allowed: ft, lp, lp-ft"):
        read_grids(bad)
    bad.write_text("[search.ft\n")
    with pytest.raises(UserError, match="cannot read it"):
        read_grids(bad)


def test_each_rule_follows_its_method() -> None:
    summary = {"methods": {m: {} for m in ("lp@cross-site", "ft@cross-site", "lp", "global-model", "ft", "x")}}
    ranked = list(in_order(summary, ["ft", "lp"])["methods"])
    assert ranked == ["global-model", "ft", "ft@cross-site", "lp", "lp@cross-site", "x"]


def test_fairness_pools_clients_over_seeds() -> None:
    import numpy as np

    from pftlab.study.decision import fairness

    g = {"local": np.array([50.0, 60.0, 70.0]), "global_balanced": np.array([40.0, 40.0, np.nan])}
    m = {"local": np.array([55.0, 50.0, 70.0]), "global_balanced": np.array([30.0, 45.0, 10.0])}
    cells = {0: {"global-model": g, "ft": m}, 1: {"global-model": g, "ft": {k: v + 1 for k, v in m.items()}}}
    by = {f.metric: f for f in fairness(cells)}
    local = by["local"]  # changes: +5, -10, 0, +6, -9, +1
    assert local.clients == 6 and local.losers == pytest.approx(100 * 2 / 6) and local.worst == -10
    assert local.median == pytest.approx(0.5)
    glob = by["global_balanced"]  # changes: -10, +5, -9, +6 (the NaN client is left out)
    assert glob.clients == 4 and glob.losers == 50 and glob.worst == -10
