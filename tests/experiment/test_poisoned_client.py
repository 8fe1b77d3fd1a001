"""Acceptance (issue 26, robust global stage): one client whose features are x1e18 does not sink the run.

The benchmark is the real `heart` (4 hospitals) with the VA hospital (client 3) cut to 50 rows, so
that it trains one batch a round: its update is then finite but ~1e16 times the others' (with more
local steps it turns non-finite, which was rejected before). Before the update-norm bound, that
update took the global weights to ~1e15 in round 1 and the whole run to "every client failed".
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import Field

from pftlab.core.schema import Strict
from pftlab.data.benchmarks import BENCHMARKS, register_benchmark
from pftlab.data.benchmarks import heart as heart_benchmark
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.federate import ClientPool
from pftlab.experiment.config import from_dict
from pftlab.experiment.runner import run_experiment

NAME = "heart-poisoned-client"
POISONED = 3  # VA: the last client, so the other clients keep their ids (and draws) without it
ROWS = 50  # 30 training rows: one local batch per round
SCALE = 1e18
METHODS = ("ft", "lp", "lp-ft")
# The other clients' mean local accuracy (in points) may differ by at most this from the run whose client 3
# is not scaled, where the global model learns from 4 hospitals instead of 3. Measured: 0.0 (ft), 0.0 (lp),
# 0.44 (lp-ft); one test sample of these hospitals (76, 74, 31 test rows) is 1.3 to 3.2 points.
TOLERANCE = 3.0


class Params(Strict):
    scale: float = Field(1.0, description="client 3's features are multiplied by this")
    drop: bool = Field(False, description="leave client 3 out of the federation")


def pools(p: Params, seed: int) -> list[ClientPool]:
    out = heart_benchmark.pools(heart_benchmark.Params(), seed)
    va = out[POISONED]
    data = va.data.subset(np.arange(ROWS))
    data = dataclasses.replace(data, x=(data.x * np.float32(p.scale)).astype(np.float32))
    out[POISONED] = dataclasses.replace(va, data=data, source_index=va.source_index[:ROWS])
    return out[:POISONED] if p.drop else out


@pytest.fixture(autouse=True)
def _benchmark() -> Iterator[None]:
    register_benchmark(Benchmark(NAME, "natural (hospitals)", "heart, client 3 cut and scaled", Params, pools))
    yield
    BENCHMARKS.unregister(NAME)


def run(tmp_path: Path, name: str, **data: object) -> tuple[dict, dict[str, dict[int, float]]]:
    cfg = from_dict(
        {
            "data": {"benchmark": NAME, **data},
            "model": {"name": "mlp", "hidden": 64},
            "federated": {"rounds": 40},
            "personalize": {"methods": list(METHODS), "epochs": 10},
            "runtime": {"progress": False, "threads": 1},
        }
    )
    summary = run_experiment(cfg, tmp_path / name)
    with (tmp_path / name / "clients.csv").open() as f:
        rows = list(csv.DictReader(f))
    local = {m: {int(r["client"]): float(r["local"]) for r in rows if r["method"] == m} for m in METHODS}
    return summary, local


def test_a_client_out_of_scale_is_left_out_of_the_global_stage_and_the_others_are_unharmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    poisoned, local = run(tmp_path, "poisoned", scale=SCALE)
    clean, clean_local = run(tmp_path, "clean")
    without, without_local = run(tmp_path, "without", drop=True)

    stage = poisoned["global_stage"]
    assert stage["updates_out_of_scale"] == stage["rounds"] == 40  # client 3's update, every round
    assert stage["updates_rejected"] == stage["rounds_skipped"] == stage["updates_clipped"] == 0
    assert clean["global_stage"]["updates_out_of_scale"] == 0 == without["global_stage"]["updates_out_of_scale"]
    # its own personalization cannot work on such inputs: it is named, the others are summarized
    for m in METHODS:
        failed = poisoned["failed_clients"].get(m, [])
        assert [f["client"] for f in failed] in ([], [POISONED]), m
        assert np.isfinite(poisoned["methods"][m]["local"]), m
    gaps = {}
    for m in METHODS:
        others = list(range(POISONED))
        mine = np.mean([local[m][c] for c in others])
        # rejected every round, the client is as if absent: the others' results equal a run without it
        assert [local[m][c] for c in others] == [without_local[m][c] for c in others], m
        gaps[m] = abs(mine - np.mean([clean_local[m][c] for c in others]))
    print("gap to the unscaled run (points):", json.dumps(gaps))
    assert max(gaps.values()) <= TOLERANCE, gaps
