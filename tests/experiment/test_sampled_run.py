"""A whole run in sampled mode: the same models as the full run, exact local accuracy, estimates
within their stated intervals of the full matrix, nothing of size N x N written, reruns verified."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pftlab.evaluate.config import EvaluateConfig
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment

SAMPLED = ('evaluate.mode="sampled"', "evaluate.sample_images=60", "evaluate.sample_clients=3")
METHODS = 'personalize.methods=["ft", "lp", "fedper"]'


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    from tests.conftest import QUICKSTART, TINY

    base = [*TINY, "data.num_clients=6", METHODS]
    tmp = tmp_path_factory.mktemp("sampled")
    full = run_experiment(load_config(QUICKSTART, [*base, 'evaluate.mode="full"']), tmp / "full")
    sampled = run_experiment(load_config(QUICKSTART, [*base, *SAMPLED]), tmp / "sampled")
    return tmp / "full", tmp / "sampled", full, sampled


def test_sampled_run_states_its_sample_and_keeps_local_exact(runs) -> None:
    _, _, full, sampled = runs
    ev = sampled["evaluation"]
    assert ev["mode"] == "sampled" and ev["sample_images"] == 60 and len(ev["sample_clients"]) == 3
    assert full["evaluation"]["mode"] == "full"
    for method, metrics in sampled["methods"].items():
        assert metrics["local"] == full["methods"][method]["local"], method  # the same models, scored exactly
        assert metrics["c_std"] == full["methods"][method]["c_std"], method
        assert sampled["intervals"][method]["local"]["se_sampling"] == 0


def test_estimates_lie_in_their_sampling_intervals_of_the_full_run(runs) -> None:
    """About 95% of the 95% intervals hold the full run's value (one draw: most, not all); none is
    more than 4 standard errors off (tests/evaluate/test_sampled.py measures coverage over draws)."""
    _, _, full, sampled = runs
    inside = []
    for method, stated in sampled["intervals"].items():
        for metric, entry in stated.items():
            if "ci95_sampling" not in entry:
                continue
            lo, hi = entry["ci95_sampling"]
            truth = full["methods"][method][metric]
            inside.append(lo - 1e-3 <= truth <= hi + 1e-3)
            if metric == "worst":  # a minimum over a subset of clients: never below the full one
                assert truth <= hi + 1e-3, (method, metric, truth, entry)
                continue
            se = max(entry["se_sampling"], 1e-3)
            low = lo - 2 * se - (entry.get("gap", 0) * 2)  # average3 carries worst's gap
            assert low <= truth <= hi + 2 * se, (method, metric, truth, entry)
    assert len(inside) >= 4 * 6 and np.mean(inside) >= 0.8, inside


def test_matrices_hold_only_the_sampled_clients_columns(runs) -> None:
    _, out, _, sampled = runs
    columns = [f"client{j}" for j in sampled["evaluation"]["sample_clients"]]
    for method in sampled["methods"]:
        with (out / "matrices" / f"{method}.csv").open() as f:
            rows = list(csv.reader(f))
        assert rows[0][1:] == columns and len(rows) == 1 + sampled["num_clients"], method
    a = np.loadtxt(out / "matrices" / "ft.csv", delimiter=",", skiprows=1, usecols=range(1, 4))
    clients = list(csv.DictReader((out / "clients.csv").open()))
    worst = [float(r["worst"]) for r in clients if r["method"] == "ft"]
    own = np.array(sampled["evaluation"]["sample_clients"])[None, :] == np.arange(6)[:, None]
    assert np.allclose(np.where(own, np.inf, a).min(1), worst, atol=1e-3)  # worst: the sampled clients but its own


def test_paired_differences_against_ft(runs) -> None:
    _, _, full, sampled = runs
    for summary in (full, sampled):
        paired = summary["paired"]["lp - ft"]["global"]
        lo, hi = paired["ci95"]
        assert lo <= paired["diff"] <= hi and paired["se"] > 0
        mean_diff = summary["methods"]["lp"]["global"] - summary["methods"]["ft"]["global"]
        assert paired["diff"] == pytest.approx(mean_diff, abs=1e-3)


def test_a_sampled_run_is_reproducible_and_reused(runs, tmp_path: Path) -> None:
    from tests.conftest import QUICKSTART, TINY

    _, out, _, sampled = runs
    cfg = load_config(QUICKSTART, [*TINY, "data.num_clients=6", METHODS, *SAMPLED])
    again = run_experiment(cfg, tmp_path / "again")
    assert (tmp_path / "again" / "summary.json").read_bytes() == (out / "summary.json").read_bytes()
    assert json.loads(json.dumps(again)) == json.loads((out / "summary.json").read_text())
    other = run_experiment(
        load_config(QUICKSTART, [*TINY, "data.num_clients=6", METHODS, *SAMPLED, "seed=1"]), tmp_path / "s1"
    )
    assert other["evaluation"]["sample_clients"] != sampled["evaluation"]["sample_clients"] or (
        other["methods"] != sampled["methods"]
    )


def test_auto_is_full_up_to_its_limit() -> None:
    ev = EvaluateConfig()
    assert ev.mode == "auto"
    assert ev.resolve(539, 15003) == "sampled"  # mnist-writers: 8.1 million model-image scores per method
    assert ev.resolve(50, 10000) == "full"
    assert EvaluateConfig(mode="full").resolve(10**5, 10**6) == "full"
    assert EvaluateConfig(mode="auto", auto_limit=0).resolve(4, 10) == "sampled"
