from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pftlab.cli import main
from pftlab.errors import UserError
from pftlab.experiment.aggregate import aggregate, run_seeds
from pftlab.experiment.config import load_config


def test_aggregate_is_mean_and_sample_std() -> None:
    runs = [
        {"benchmark": "b", "num_clients": 2, "seed": s, "methods": {"ft": {"local": v, "global": 2 * v}}}
        for s, v in ((0, 80.0), (1, 90.0), (2, 70.0))
    ]
    agg = aggregate(runs)
    assert agg["seeds"] == [0, 1, 2]
    assert agg["methods"]["ft"]["local"] == {"mean": 80.0, "std": 10.0}
    assert agg["methods"]["ft"]["global"]["std"] == 20.0


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
