"""`pftlab bench --quick`: the benchmark's whole code path on tiny data writes every figure the issue names."""

from __future__ import annotations

import json
from pathlib import Path

from pftlab.cli import main

KEYS = (
    "speedup_end_to_end",
    "lp_cost_vs_forward",
    "memory_ratio_1000_vs_100",
    "ft_flops_fraction_of_peak",
    "metrics_max_abs_diff",
)


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
