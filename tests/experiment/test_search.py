from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pftlab.core.errors import UserError
from pftlab.data.benchmarks import build_federation
from pftlab.data.dataset import Dataset
from pftlab.evaluate.matrix import accuracy
from pftlab.evaluate.scoring import Scoring
from pftlab.experiment.config import from_dict, load_config
from pftlab.experiment.runner import personalize_all, run_experiment
from pftlab.federated import run_global_stage
from pftlab.models import build_model
from pftlab.personalize import METHODS, personalize_client

GRID = {"personalize": {"methods": ["ft"], "epochs": 3}, "search": {"ft": {"lr": [0.0001, 0.01, 0.05]}}}


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ({"lp": {"lr": [0.1]}}, "search.lp: 'lp' is not in personalize.methods"),
        ({"ft": {"learning_rate": [0.1]}}, "search.ft: unknown key 'learning_rate'; allowed: lr"),
        ({"ft": {"lr": []}}, "search.ft.lr: give 1 to 64 values, got 0"),
        ({"ft": {"lr": [0.1, -1.0]}}, "search.ft.lr: Input should be greater than 0"),
        ({"ft": {"lr": list(np.linspace(0.01, 1, 65))}}, "give 1 to 64 values, got 65"),
    ],
)
def test_bad_grids_are_refused(search: dict, expected: str) -> None:
    with pytest.raises(UserError) as info:
        from_dict({"personalize": {"methods": ["ft"]}, "search": search})
    assert expected in str(info.value)


def test_grid_points_merge_with_the_base_parameters() -> None:
    cfg = from_dict(
        {"method": {"lp-ft": {"lp_lr": 0.2}}, "search": {"lp-ft": {"lp_epochs": [1, 2], "ft_lr": [0.1, 0.2]}}}
    )
    points = cfg.search_grid("lp-ft")
    assert len(points) == 4 and all(p.lp_lr == 0.2 for p in points)
    assert {(p.lp_epochs, p.ft_lr) for p in points} == {(1, 0.1), (1, 0.2), (2, 0.1), (2, 0.2)}
    with pytest.raises(UserError, match="lp_epochs=20 exceeds the budget"):
        from_dict({"search": {"lp-ft": {"lp_epochs": [1, 20]}}})


@pytest.fixture(scope="module")
def setup():
    # the plain loop, so the client's validation accuracies below are recomputed bit for bit
    cfg = from_dict({**GRID, "data": {"num_clients": 4}, "federated": {"rounds": 3}, "runtime": {"engine": "loop"}})
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights = run_global_stage(model, fed, cfg.federated, cfg.seed)[0]
    return cfg, fed, model, weights


def _choose(cfg, fed, model, weights):
    model.load_state_dict(weights)
    return personalize_all(model, weights, fed, cfg, "ft", Scoring.make(fed, model, "head", "full", 0, 0, cfg.seed))


def test_each_client_keeps_its_best_grid_point_on_validation(setup) -> None:
    cfg, fed, model, weights = setup
    _, chosen, *_ = _choose(cfg, fed, model, weights)
    assert [c["client"] for c in chosen] == [0, 1, 2, 3]
    client = fed.clients[1]
    val_accs = []
    for params in cfg.search_grid("ft"):
        personalize_client(model, weights, METHODS["ft"], params, cfg.personalize, client.train, cfg.seed, 1)
        val_accs.append(accuracy(model, client.val))
    assert chosen[1]["val_accuracy"] == max(val_accs)
    assert chosen[1]["params"]["lr"] == cfg.search_grid("ft")[int(np.argmax(val_accs))].lr


def test_test_labels_play_no_part_in_the_choice(setup) -> None:
    cfg, fed, model, weights = setup
    rng = np.random.default_rng(0)
    scrambled = dataclasses.replace(
        fed,
        clients=[
            dataclasses.replace(c, test=Dataset(c.test.x, rng.permutation(c.test.y), c.test.num_classes))
            for c in fed.clients
        ],
    )
    correct_a, chosen_a, *_ = _choose(cfg, fed, model, weights)
    correct_b, chosen_b, *_ = _choose(cfg, scrambled, model, weights)
    assert chosen_a == chosen_b
    assert not np.array_equal(correct_a, correct_b), "scrambling test labels must change the test scores"


def test_run_writes_the_choices(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["ft","lp"]', "search.lp.lr=[0.01, 0.1]"])
    run_experiment(cfg, tmp_path)
    chosen = json.loads((tmp_path / "search.json").read_text())
    assert set(chosen) == {"lp"} and len(chosen["lp"]) == cfg.data.num_clients
    assert all(c["params"]["lr"] in (0.01, 0.1) for c in chosen["lp"])
    assert "search" in (tmp_path / "config.toml").read_text()
