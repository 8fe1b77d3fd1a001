from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.experiment.aggregate import aggregate, left_out_note, run_seeds
from pftlab.experiment.config import load_config


def test_aggregate_is_mean_and_sample_std() -> None:
    runs = [
        {"benchmark": "b", "num_clients": 2, "seed": s, "methods": {"ft": {"local": v, "global": 2 * v}}}
        for s, v in ((0, 80.0), (1, 90.0), (2, 70.0))
    ]
    agg = aggregate(runs)
    assert agg["seeds"] == [0, 1, 2]
    assert agg["methods"]["ft"]["local"] == {"mean": 80.0, "std": 10.0, "values": [80.0, 90.0, 70.0]}
    assert agg["methods"]["ft"]["global"]["std"] == 20.0
    assert "left_out" not in agg


def test_a_metric_some_seeds_lack_is_left_out_not_filled_with_zero() -> None:
    """distortion_own of 0.2 in seed 0 and none in seed 1 is not a mean of 0.1: it is left out and named."""
    runs = [
        {"benchmark": "b", "num_clients": 2, "seed": 0, "methods": {"ft": {"local": 80.0, "distortion_own": 0.2}}},
        {"benchmark": "b", "num_clients": 2, "seed": 1, "methods": {"ft": {"local": 90.0}}},
    ]
    agg = aggregate(runs)
    assert "distortion_own" not in agg["methods"]["ft"]
    assert agg["methods"]["ft"]["local"]["mean"] == 85.0
    assert agg["left_out"] == {"ft": {"distortion_own": [1]}}
    assert left_out_note(agg) == "Left out, as not every seed has them: ft distortion_own (missing in seed 1).\n"


def test_failed_clients_count_zero_where_no_client_failed() -> None:
    """summarize() writes `failed` only when a client failed: its absence is a count of 0, not a gap."""
    runs = [
        {"benchmark": "b", "num_clients": 4, "seed": s, "methods": {"ft": {"local": 80.0, **extra}}}
        for s, extra in ((0, {"failed": 2}), (1, {}))
    ]
    agg = aggregate(runs)
    assert agg["methods"]["ft"]["failed"]["mean"] == 1.0
    assert "left_out" not in agg


def test_seeds_with_different_methods_are_refused() -> None:
    runs = [
        {"benchmark": "b", "num_clients": 2, "seed": 0, "methods": {"ft": {"local": 80.0}}},
        {"benchmark": "b", "num_clients": 2, "seed": 1, "methods": {"lp": {"local": 80.0}}},
    ]
    with pytest.raises(ValueError, match="different configs"):
        aggregate(runs)


def test_run_seeds_writes_one_directory_per_seed(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    cfg = load_config(quickstart, tiny)
    agg = run_seeds(cfg, [0, 1], tmp_path)
    summaries = [json.loads((tmp_path / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
    assert [s["seed"] for s in summaries] == [0, 1]
    local = [s["methods"]["lp-ft"]["local"] for s in summaries]
    assert agg["methods"]["lp-ft"]["local"]["mean"] == pytest.approx(np.mean(local), abs=1e-4)
    assert agg == json.loads((tmp_path / "aggregate.json").read_text())
    assert "lp-ft" in (tmp_path / "aggregate.md").read_text()
    with pytest.raises(UserError, match="distinct"):
        run_seeds(cfg, [1, 1], tmp_path / "again")


def test_cli_seeds(quickstart: Path, tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = [a for t in tiny for a in ("--set", t)]
    assert main(["run", str(quickstart), *sets, "--seeds", "3", "4", "--out", str(tmp_path)]) == 0
    assert "mean ± std" in capsys.readouterr().out
    assert main(["run", str(quickstart), "--seeds", "x", "--out", str(tmp_path / "bad")]) == 2
    assert "invalid int value" in capsys.readouterr().err


def test_paired_differences_are_averaged_over_seeds_with_a_t_interval() -> None:
    def summary(seed: int, diff: float) -> dict:
        return {
            "seed": seed,
            "benchmark": "b",
            "num_clients": 2,
            "methods": {"ft": {"global": 50.0}, "lp-ft": {"global": 50.0 + diff}},
            "paired": {"lp-ft - ft": {"global": {"diff": diff, "se": 0.1, "ci95": [diff - 0.2, diff + 0.2]}}},
        }

    agg = aggregate([summary(0, 1.0), summary(1, 2.0), summary(2, 3.0)])
    entry = agg["paired"]["lp-ft - ft"]["global"]
    half = 4.302652729911275 * 1.0 / 3**0.5  # t(0.975, 2) x sd / sqrt(3)
    assert entry["mean"] == 2.0 and entry["over"] == "seeds"
    assert entry["ci95"] == [round(2.0 - half, 4), round(2.0 + half, 4)]
    one = aggregate([summary(0, 1.0)])["paired"]["lp-ft - ft"]["global"]
    assert one["ci95"] == [0.8, 1.2] and one["over"] == "clients"
