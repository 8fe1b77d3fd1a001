"""`pftlab bench --quick`: the benchmark's whole code path on tiny data writes every figure the issue names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pftlab.cli import main
from pftlab.core.threads import usable_cores

KEYS = (
    "speedup_end_to_end",
    "lp_cost_vs_forward",
    "memory_ratio_1000_vs_100",
    "ft_flops_fraction_of_peak",
    "metrics_max_abs_diff",
)


@pytest.mark.long
def test_quick_bench_writes_bench_json_and_md(tmp_path: Path) -> None:
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    for key in KEYS:
        assert isinstance(result[key], float) and result[key] >= 0, key
    # the same per-epoch data order and recipes: pftlab and the reference loop score the same
    assert result["metrics_max_abs_diff"] <= result["metrics_tolerance"]
    assert 0 < result["ft_flops_fraction_of_peak"] < 1.5
    assert result["memory"]["large"]["clients"] == 10 * result["memory"]["small"]["clients"]
    md = (tmp_path / "bench.md").read_text()
    assert "speedup_end_to_end" in md and "| work | pftlab | reference |" in md
    # the contended scenario: both sides timed alone and beside a busy process, threads as chosen then
    c = result["contended"]
    for scenario in ("alone", "busy_neighbour"):
        got = c[scenario]
        assert got["pftlab_s"] > 0 and got["reference_s"] > 0 and got["threads"] >= 1
        assert got["ratio"] == pytest.approx(got["reference_s"] / got["pftlab_s"], rel=1e-2)
        assert got["threads_rule"].startswith("auto: ")
    usable = usable_cores()
    assert c["busy_neighbour"]["threads"] < usable or usable == 1  # the neighbour's core is left to it
    assert c["pftlab_slowdown"] == pytest.approx(c["busy_neighbour"]["pftlab_s"] / c["alone"]["pftlab_s"], rel=1e-2)
    assert "| one busy neighbour |" in md and "pftlab_slowdown" in md


@pytest.mark.long
def test_quick_scaling_bench_writes_its_figures_beside_the_others(tmp_path: Path) -> None:
    (tmp_path / "bench.json").write_text(json.dumps({"speedup_end_to_end": 7.0}))
    assert main(["bench", "--scaling", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["speedup_end_to_end"] == 7.0  # the main bench's figures are kept
    scaling = result["scaling"]
    rows = scaling["rows"]
    assert [r["clients"] for r in rows] == [10, 20, 40]
    for r in rows:
        assert r["seconds"] > 0 and r["peak_mib"] > 0
        assert r["ms_per_client"] == pytest.approx(1000 * r["seconds"] / r["clients"], rel=1e-3)
    assert scaling["time_per_client_ratio"] == pytest.approx(
        rows[-1]["ms_per_client"] / rows[0]["ms_per_client"], rel=1e-2
    )
    assert scaling["config"]["evaluate"]["mode"] == "sampled"
    md = (tmp_path / "scaling.md").read_text()
    assert "| clients | seconds | ms per client | peak RSS |" in md and "time per client" in md


@pytest.mark.long
def test_contended_repeats_alternate_and_state_intervals(tmp_path: Path) -> None:
    (tmp_path / "bench.json").write_text(json.dumps({"speedup_end_to_end": 7.0}))
    assert main(["bench", "--contended", "2", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["speedup_end_to_end"] == 7.0  # the main bench's figures are kept
    r = result["contended_repeats"]
    pairs = r["pairs"]
    assert [p["order"] for p in pairs] == ["alone first", "busy first"]
    for p in pairs:
        a, b = p["alone"], p["busy_neighbour"]
        assert a["threads_rule"].startswith("auto: ") and b["threads_rule"].startswith("auto: ")
        assert p["pftlab_slowdown"] == pytest.approx(b["pftlab_s"] / a["pftlab_s"], rel=1e-3)
        assert p["ratio_change"] == pytest.approx(b["ratio"] - a["ratio"], abs=1e-3)
    changes = [p["ratio_change"] for p in pairs]
    c = r["ratio_change"]
    assert c["n"] == 2 and c["mean"] == pytest.approx(sum(changes) / 2, abs=1e-3)
    assert c["ci95"][0] <= c["mean"] <= c["ci95"][1]
    md = (tmp_path / "contended.md").read_text()
    assert md.count("first |") == 2 and "ratio to the reference, beside a neighbour minus alone" in md


def test_contended_needs_two_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--contended", "1", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--contended 1: at least 2 pairs" in err and not (tmp_path / "bench.json").exists()
    assert main(["bench", "--contended", "2", "--scaling", "--quick", "--out", str(tmp_path)]) == 2
    assert "--contended runs alone" in capsys.readouterr().err and not (tmp_path / "bench.json").exists()
