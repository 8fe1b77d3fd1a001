"""`evaluate.mode = "full"` is the cross-client matrix as it always was: a published study cell,
computed by the code before sampled evaluation existed, comes out again to the digit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import SHARED_DATA

from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment

CELL = Path(__file__).parents[2] / "docs" / "study" / "runs" / "heart" / "seed0"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
def test_full_mode_reproduces_a_published_cell_to_the_digit(tmp_path: Path) -> None:
    published = json.loads((CELL / "summary.json").read_text())
    threads = json.loads((CELL / "run.json").read_text())["threads"]  # numbers depend on the thread count
    overrides = ['evaluate.mode="full"', f"runtime.threads={threads}", "runtime.progress=false"]
    summary = run_experiment(load_config(CELL / "config.toml", overrides), tmp_path / "heart")
    assert summary["evaluation"]["mode"] == "full"
    assert set(summary["methods"]) == set(published["methods"])
    for method, metrics in published["methods"].items():
        for key, value in metrics.items():
            assert summary["methods"][method][key] == value, (method, key)
    assert summary["test_sizes"] == published["test_sizes"]
