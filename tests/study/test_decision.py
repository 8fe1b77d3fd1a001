"""The study's Decision: paired bootstrap, t over seeds, Holm, decide(), clients.csv reading and the outputs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from pftlab.core.errors import UserError
from pftlab.study.decision import (
    Comparison,
    decide,
    decision_markdown,
    holm,
    paired,
    paired_bootstrap,
    paired_seeds,
    read_clients,
    verdict,
    with_average,
    write_decision,
)

HEADER = (
    "method,client,domain,n_train,n_test,local,global,global_balanced,worst,"
    "distortion_own,distortion_others,cka_own,cka_others"
)


def _method(x: np.ndarray, clients: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One method's per-client values: the same numbers on every accuracy metric."""
    ids = np.arange(len(x), dtype=float) if clients is None else clients
    return {"client": ids, "local": x, "global": x, "global_balanced": x}


# --- paired_bootstrap ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1.5, -0.75])
def test_constant_difference_collapses_the_interval(c: float) -> None:
    rng = np.random.default_rng(1)
    b = [rng.normal(70, 10, size=n) for n in (5, 8, 13)]  # clients differ between seeds
    a = [x + c for x in b]
    r = paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert r.diff == pytest.approx(c, abs=1e-9)
    assert r.low == pytest.approx(c, abs=1e-9) and r.high == pytest.approx(c, abs=1e-9)
    assert r.p == pytest.approx(2 / 2001)  # every resample on one side: (0 + 1) / (n + 1), doubled
    assert (r.seeds, r.clients) == (3, 26)
    cells = {s: {"lp-ft": _method(a[s]), "ft": _method(b[s])} for s in range(3)}
    rows = decide({0: cells[0]}, n_boot=2000)  # one seed: the clients' bootstrap
    assert {r.verdict for r in rows} == {"better" if c > 0 else "worse", "not tested"}  # local_min: one seed
    assert all(r.diff == pytest.approx(c, abs=1e-9) for r in rows)
    # several seeds: Student's t over the seeds' means, and the same difference in every seed has no
    # spread to test against
    assert {r.verdict for r in decide(cells, n_boot=2000)} == {"not tested"}


def test_no_difference_gives_p_one_and_never_zero() -> None:
    x = [np.linspace(0, 100, 7)] * 2
    r = paired_bootstrap(x, x, n_boot=500, seed=3)
    assert (r.diff, r.low, r.high, r.p) == (0.0, 0.0, 0.0, 1.0)
    assert paired_bootstrap([np.full(4, 2.0)], [np.zeros(4)], n_boot=99, seed=0).p == pytest.approx(2 / 100)


def test_zero_mean_noise_is_mostly_no_difference() -> None:
    rng = np.random.default_rng(7)
    rejected = 0
    for k in range(40):
        a = [rng.normal(0, 5, size=200) + rng.normal(0, 1) for _ in range(5)]
        b = [rng.normal(0, 5, size=200) for _ in range(5)]
        rejected += paired_bootstrap(a, b, n_boot=1000, seed=k).p < 0.05
    assert rejected <= 6  # about 5% expected; 40 tests at the 5% level


def test_clear_shift_is_better_and_covered() -> None:
    rng = np.random.default_rng(11)
    b = [rng.normal(60, 8, size=100) for _ in range(5)]
    a = [x + 2.0 + rng.normal(0, 3, size=x.size) for x in b]
    r = paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert 0 < r.low < 2.0 < r.high
    assert r.p < 0.01
    rows = decide({s: {"lp-ft": _method(a[s]), "ft": _method(b[s])} for s in range(5)}, n_boot=2000)
    assert all(c.verdict == "better" for c in rows if c.metric != "local_min")


def test_one_seed_is_the_client_bootstrap() -> None:
    """With one seed only clients are resampled: the interval is about mean ± 1.96 sd / sqrt(n)."""
    rng = np.random.default_rng(5)
    d = rng.normal(1.0, 4.0, size=400)
    r = paired_bootstrap([d], [np.zeros_like(d)], n_boot=10_000, seed=0)
    half = 1.96 * d.std() / math.sqrt(d.size)
    assert r.diff == pytest.approx(d.mean())
    assert r.low == pytest.approx(d.mean() - half, abs=0.05 * half)
    assert r.high == pytest.approx(d.mean() + half, abs=0.05 * half)
    assert r.seeds == 1


def test_hierarchical_interval_coverage() -> None:
    """Seed effects plus client noise around a known mean: the 95% interval covers it in ~90-99% of datasets."""
    rng = np.random.default_rng(2024)
    mu, covered, runs = 1.0, 0, 200
    for k in range(runs):
        seed_effects = rng.normal(0, 0.5, size=5)
        a = [mu + u + rng.normal(0, 2.0, size=20) for u in seed_effects]
        r = paired_bootstrap(a, [np.zeros(20)] * 5, n_boot=2000, seed=k)
        covered += r.low <= mu <= r.high
    assert 0.90 * runs <= covered <= 0.99 * runs


def test_nan_clients_are_dropped_and_seeds_without_pairs_too() -> None:
    a = [np.array([1.0, np.nan, 3.0]), np.array([np.nan])]
    b = [np.array([0.0, 0.0, np.nan]), np.array([0.0])]
    r = paired_bootstrap(a, b, n_boot=100, seed=0)
    assert (r.diff, r.seeds, r.clients) == (1.0, 1, 1)
    empty = paired_bootstrap([np.array([np.nan])], [np.array([1.0])], n_boot=100, seed=0)
    assert math.isnan(empty.diff) and math.isnan(empty.p) and empty.seeds == 0


def test_bootstrap_is_deterministic_and_seeded() -> None:
    rng = np.random.default_rng(0)
    a, b = [rng.normal(size=30) for _ in range(3)], [rng.normal(size=30) for _ in range(3)]
    assert paired_bootstrap(a, b, 500, 4) == paired_bootstrap(a, b, 500, 4)
    assert paired_bootstrap(a, b, 500, 4).low != paired_bootstrap(a, b, 500, 5).low


# --- paired_seeds -------------------------------------------------------------------------------------------------


def test_paired_seeds_t_interval_analytic() -> None:
    """d = 1, 2, 3: mean 2, sd 1, df 2, where t has closed forms: quantile (2q - 1) / sqrt(2q(1 - q)),
    two-sided p = 1 - t / sqrt(2 + t^2)."""
    r = paired_seeds([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    q = 0.975
    half = (2 * q - 1) / math.sqrt(2 * q * (1 - q)) / math.sqrt(3)
    t = 2 / (1 / math.sqrt(3))
    assert r.diff == pytest.approx(2.0)
    assert (r.low, r.high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert r.p == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert (r.seeds, r.clients) == (3, 0)


def test_paired_seeds_under_two_seeds_is_not_tested() -> None:
    r = paired_seeds([5.0], [3.0])
    assert r.diff == 2.0 and math.isnan(r.low) and math.isnan(r.high) and math.isnan(r.p)
    rows = decide({0: {"lp-ft": _method(np.array([5.0, 6.0])), "ft": _method(np.array([3.0, 3.0]))}}, n_boot=200)
    assert next(c for c in rows if c.metric == "local_min").verdict == "not tested"


# --- holm ---------------------------------------------------------------------------------------------------------


def test_holm_hand_example() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.01, math.nan, 0.04, 0.03])  # NaN stays NaN and is not counted: m = 3
    assert math.isnan(out[1]) and [out[0], out[2], out[3]] == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([]) == []


def test_holm_rejects_what_the_step_down_procedure_rejects() -> None:
    """Adjusted p <= alpha exactly where Holm's step-down test rejects: p_(j) <= alpha / (m - j + 1) for all j <= k."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = list(rng.uniform(0, 0.1, size=int(rng.integers(1, 9))) ** 1.5)
        adjusted = holm(p)
        assert all(q >= x for q, x in zip(adjusted, p, strict=True))
        for alpha in (0.01, 0.05, 0.1):
            rejected: set[int] = set()
            for k, i in enumerate(sorted(range(len(p)), key=lambda i: p[i])):
                if p[i] > alpha / (len(p) - k):
                    break
                rejected.add(i)
            assert {i for i, q in enumerate(adjusted) if q <= alpha} == rejected


def test_holm_matches_statsmodels() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = [0.001, 0.2, 0.03, 0.04, 0.5, 0.012]
    assert holm(p) == pytest.approx(list(multitest.multipletests(p, method="holm")[1]))


def test_verdict_at_the_95_percent_level() -> None:
    assert verdict(0.3, 0.049) == "better" and verdict(-0.3, 0.049) == "worse"
    assert verdict(0.3, 0.05) == verdict(-5.0, 0.2) == verdict(0.0, 0.0) == "no difference"
    assert verdict(1.0, math.nan) == "not tested"


# --- read_clients -------------------------------------------------------------------------------------------------


def test_read_clients_by_header_with_empty_cells(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_text(
        HEADER + ",new_metric\n"
        "ft,0,clean,306,128,15.625,18.38,18.03,8.49,0.1,0.2,0.9,0.8,1\n"
        "ft,1,rotate,229,95,,,,,,,,,2\n"  # a failed client
        "lp-ft,0,clean,306,128,20.0,19.0,18.5,9.0,,,,,3\n"
        "lp-ft,1,rotate,229,95,30.0,21.0,20.5,9.0,,,,,4\n"
    )
    out = read_clients(path)
    assert list(out) == ["ft", "lp-ft"]
    assert out["ft"]["local"][0] == 15.625 and math.isnan(out["ft"]["local"][1])
    assert list(out["lp-ft"]["client"]) == [0.0, 1.0]
    assert list(out["lp-ft"]["new_metric"]) == [3.0, 4.0]  # a column added later is read by its name
    assert np.isnan(out["lp-ft"]["distortion_own"]).all()
    assert "domain" not in out["ft"]  # text
    assert list(with_average(out)["lp-ft"]["average_balanced"]) == [19.25, 25.25]


def test_read_clients_missing_column_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "seed3" / "clients.csv"
    path.parent.mkdir()
    path.write_text("method,client,domain,local,global\nft,0,clean,1.0,2.0\n")
    with pytest.raises(UserError, match="global_balanced") as err:
        read_clients(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    path.write_text(HEADER + "\nft,0,clean,1,1,abc,1,1,1,,,,\n")
    with pytest.raises(UserError, match="local"):
        read_clients(path)
    with pytest.raises(UserError, match="nowhere"):
        read_clients(tmp_path / "nowhere.csv")


# --- decide -------------------------------------------------------------------------------------------------------


def test_decide_drops_nan_pairwise_and_skips_partial_methods() -> None:
    ref0, ft0 = np.array([np.nan, 5.0, 7.0, 9.0]), np.array([1.0, np.nan, 4.0, 4.0])
    ref1, ft1 = np.array([2.0, 2.0]), np.array([1.0, 0.0])
    cells = {
        0: {"ft": _method(ft0), "lp-ft": _method(ref0), "fedrep": _method(ft0)},
        1: {"ft": _method(ft1), "lp-ft": _method(ref1)},  # fedrep missing: skipped
    }
    rows = decide(cells, n_boot=300)
    assert {c.method for c in rows} == {"ft"}
    local = next(c for c in rows if c.metric == "local")
    assert local.diff == pytest.approx(((3 + 5) / 2 + (1 + 2) / 2) / 2)
    assert (local.seeds, local.clients) == (2, 4)
    worst = next(c for c in rows if c.metric == "local_min")
    assert worst.diff == pytest.approx(((7 - 4) + (2 - 0)) / 2)  # minima over the clients valid in both
    assert [c.metric for c in rows] == ["local", "global_balanced", "global", "average_balanced", "local_min"]


def test_decide_holm_family_is_the_tested_comparisons() -> None:
    b = np.linspace(50, 60, 6)
    cell = {"ft": _method(b), "lp-ft": _method(b + 1), "fedrep": _method(b + 2), "ft~xsite": _method(b - 1)}
    rows = decide({0: cell}, n_boot=999)  # one seed: local_min is not tested, so not in the family
    tested = [c for c in rows if not math.isnan(c.p)]
    assert len(tested) == 3 * 4 and len(rows) == 3 * 5
    assert all(c.p_adjusted == pytest.approx(len(tested) * 2 / 1000) for c in tested)
    assert {(c.method, c.verdict) for c in tested} == {("ft", "better"), ("fedrep", "worse"), ("ft~xsite", "better")}


def test_decide_is_deterministic_and_needs_the_reference() -> None:
    rng = np.random.default_rng(9)
    cells = {s: {m: _method(rng.normal(50, 5, size=12)) for m in ("lp-ft", "ft", "lp")} for s in (2, 0, 1)}
    first, second = decide(cells, n_boot=400, seed=1), decide(cells, n_boot=400, seed=1)
    assert [c.to_dict() for c in first] == [c.to_dict() for c in second]
    one = {0: cells[0]}  # one seed: the clients' bootstrap, which the seed drives
    assert [c.to_dict() for c in decide(one, n_boot=400, seed=1)] != [
        c.to_dict() for c in decide(one, n_boot=400, seed=2)
    ]
    assert decide(cells, reference="proximal-ft") == []


def test_decide_refuses_unpaired_clients() -> None:
    x = np.ones(3)
    cells = {0: {"lp-ft": _method(x), "ft": _method(x, clients=np.array([0.0, 1.0, 5.0]))}}
    with pytest.raises(UserError, match="other clients"):
        decide(cells, n_boot=10)


# --- outputs ------------------------------------------------------------------------------------------------------


def _rows() -> dict[str, list[Comparison]]:
    b = np.linspace(50, 60, 8)
    better = {
        s: {"lp-ft": _method(b + 1 + 0.2 * s), "ft": _method(b), "fedrep": _method(b + 3 + 0.1 * s)} for s in range(4)
    }
    same = {0: {"lp-ft": _method(b), "proximal-ft": _method(b)}}
    return {"digits": decide(better, n_boot=500), "office": decide(same, n_boot=500)}


def test_decision_markdown_names_methods_and_verdicts() -> None:
    text = decision_markdown(_rows(), n_boot=500)
    for word in ("### digits", "### office", "| ft |", "| fedrep |", "| proximal-ft |"):
        assert word in text
    for word in ("better", "worse", "no difference", "not tested", "Holm", "500", "Student's t"):
        assert word in text
    # lp-ft - ft: 1, 1.2, 1.4, 1.6 over the seeds: 1.3 +- t(0.975, 3) * 0.2582 / 2
    assert "+1.30 [0.89, 1.71] better" in text


def test_write_decision_one_line_per_comparison(tmp_path: Path) -> None:
    rows = _rows()
    write_decision(tmp_path, rows)
    with open(tmp_path / "decision.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == sum(map(len, rows.values())) == 2 * 5 + 5
    assert list(lines[0])[:3] == ["benchmark", "method", "metric"]
    untested = next(r for r in lines if r["benchmark"] == "office" and r["metric"] == "local_min")
    assert (untested["p"], untested["low"], untested["verdict"]) == ("", "", "not tested")


def test_several_seeds_use_students_t_over_the_seeds_means() -> None:
    rng = np.random.default_rng(4)
    b = [rng.normal(60, 8, size=n) for n in (6, 9, 7, 8, 5)]
    a = [x + rng.normal(1.0, 2.0) + rng.normal(0, 3, size=len(x)) for x in b]
    r = paired(a, b)
    means = np.array([(x - y).mean() for x, y in zip(a, b, strict=True)])
    t = stats.ttest_1samp(means, 0.0)
    half = stats.t.ppf(0.975, 4) * means.std(ddof=1) / np.sqrt(5)
    assert r.diff == pytest.approx(means.mean()) and r.p == pytest.approx(t.pvalue)
    assert (r.low, r.high) == pytest.approx((means.mean() - half, means.mean() + half))
    assert (r.seeds, r.clients) == (5, 35)


def test_no_true_difference_is_called_significant_about_5_percent_of_the_time() -> None:
    """Seed effects and client noise, no true difference: with 5 seeds the test keeps its level
    (the hierarchical bootstrap called 14% of such comparisons significant)."""
    rng = np.random.default_rng(11)
    rejected = 0
    for _ in range(300):
        b = [rng.normal(60, 5, size=20) for _ in range(5)]
        a = [x + rng.normal(0, 1) + rng.normal(0, 1, size=20) for x in b]
        rejected += paired(a, b).p < 0.05
    assert 3 <= rejected <= 27  # 5% of 300 is 15; 1%..9%
