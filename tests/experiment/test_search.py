from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pftlab.core.errors import UserError
from pftlab.data.benchmarks import build_federation
from pftlab.data.dataset import Dataset
from pftlab.evaluate.choice import ChoiceConfig, ValidationPool
from pftlab.evaluate.matrix import accuracy
from pftlab.evaluate.scoring import Scoring
from pftlab.experiment.config import from_dict, load_config
from pftlab.experiment.runner import personalize_all, personalize_rules, run_experiment
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


def scrambled(fed, seed: int):
    """The federation with every client's test labels shuffled: a choice that changes used test data."""
    rng = np.random.default_rng(seed)
    clients = [
        dataclasses.replace(c, test=Dataset(c.test.x, rng.permutation(c.test.y), c.test.num_classes))
        for c in fed.clients
    ]
    return dataclasses.replace(fed, clients=clients)


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
    correct_a, chosen_a, *_ = _choose(cfg, fed, model, weights)
    correct_b, chosen_b, *_ = _choose(cfg, scrambled(fed, 0), model, weights)
    assert chosen_a == chosen_b
    assert not np.array_equal(correct_a, correct_b), "scrambling test labels must change the test scores"


def test_run_writes_the_choices(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["ft","lp"]', "search.lp.lr=[0.01, 0.1]"])
    run_experiment(cfg, tmp_path)
    chosen = json.loads((tmp_path / "search.json").read_text())
    assert set(chosen) == {"lp"} and len(chosen["lp"]) == cfg.data.num_clients
    assert all(c["params"]["lr"] in (0.01, 0.1) for c in chosen["lp"])
    assert "search" in (tmp_path / "config.toml").read_text()


BOTH = {"rules": ["local", "cross-site"], "weight": 0.5, "pool_images": 200}


def _rules(cfg, fed, model, weights, choice=BOTH):
    cfg = cfg.model_copy(update={"choice": ChoiceConfig(**choice)})
    model.load_state_dict(weights)
    scoring = Scoring.make(fed, model, "head", "full", 0, 0, cfg.seed)
    return cfg, personalize_rules(model, weights, fed, cfg, "ft", scoring)[0]


def test_cross_site_choice_maximises_the_stated_objective(setup) -> None:
    cfg, fed, model, weights = setup
    cfg, by_rule = _rules(cfg, fed, model, weights)
    pool = ValidationPool.of(fed.clients, 200, cfg.seed)
    assert pool.sizes.tolist() == [min(50, len(c.val)) for c in fed.clients]  # 200 images spread over 4 clients
    picks = by_rule["cross-site"][1]
    for k, client in enumerate(fed.clients):
        scores = []
        for params in cfg.search_grid("ft"):
            personalize_client(model, weights, METHODS["ft"], params, cfg.personalize, client.train, cfg.seed, k)
            own = accuracy(model, client.val)
            others = np.delete(pool.accuracies(model), k).mean()
            scores.append(0.5 * own + 0.5 * others)
        assert picks[k]["objective"] == pytest.approx(max(scores), abs=1e-9)
        assert picks[k]["params"]["lr"] == cfg.search_grid("ft")[int(np.argmax(scores))].lr
    # the local rule's choices are today's search (the default, one rule), bit for bit
    _, local_alone, *_ = _choose(cfg.model_copy(update={"choice": ChoiceConfig()}), fed, model, weights)
    assert by_rule["local"][1] == local_alone


def test_cross_site_choice_uses_no_test_data(setup) -> None:
    cfg, fed, model, weights = setup
    _, a = _rules(cfg, fed, model, weights)
    _, b = _rules(cfg, scrambled(fed, 1), model, weights)
    for rule in ("local", "cross-site"):
        assert a[rule][1] == b[rule][1], rule  # the same choices, scores and all
        assert not np.array_equal(a[rule][0], b[rule][0]), "scrambled test labels must change the test scores"


def test_cross_site_with_weight_zero_is_the_local_rule(setup) -> None:
    cfg, fed, model, weights = setup
    _, by_rule = _rules(cfg, fed, model, weights, {**BOTH, "weight": 0.0})
    local = [c["params"] for c in by_rule["local"][1]]
    assert [c["params"] for c in by_rule["cross-site"][1]] == local
    np.testing.assert_array_equal(by_rule["local"][0], by_rule["cross-site"][0])


def test_run_reports_each_rule_under_its_name(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    cfg = load_config(
        quickstart,
        [
            *tiny,
            'personalize.methods=["lp","fedper","lp-ft"]',
            "search.lp.lr=[0.01, 0.1]",
            "search.fedper.lr=[0.01, 0.05]",  # a baseline's grid: its federated training once per point
            'choice.rules=["local","cross-site"]',
        ],
    )
    summary = run_experiment(cfg, tmp_path)
    names = ["lp", "lp@cross-site", "fedper", "fedper@cross-site", "lp-ft", "lp-ft@cross-site"]
    assert list(summary["methods"]) == ["global-model", *names]
    chosen = json.loads((tmp_path / "search.json").read_text())
    assert set(chosen) == {"lp", "lp@cross-site", "fedper", "fedper@cross-site"}
    for name in ("lp@cross-site", "fedper@cross-site"):
        assert all({"val_others", "objective"} <= set(c) for c in chosen[name])
        assert len(chosen[name]) == cfg.data.num_clients
    assert {c["params"]["lr"] for c in chosen["fedper"]} <= {0.01, 0.05}
    assert (tmp_path / "matrices" / "lp@cross-site.csv").exists()
    # one grid point (lp-ft has none here): both rules keep it, so both report the same numbers
    assert summary["methods"]["lp-ft"] == summary["methods"]["lp-ft@cross-site"]


ZERO = ["choice.weight=0"]


def test_cross_site_with_weight_zero_runs_end_to_end(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    """weight 0 scores no other client (val_others is None, JSON has no NaN), and picks as the local rule."""
    cfg = load_config(
        quickstart,
        [*tiny, 'personalize.methods=["lp"]', "search.lp.lr=[0.01, 0.1]", 'choice.rules=["local","cross-site"]', *ZERO],
    )
    run_experiment(cfg, tmp_path)
    chosen = json.loads((tmp_path / "search.json").read_text())
    assert all(c["val_others"] is None for c in chosen["lp@cross-site"])
    assert [c["params"] for c in chosen["lp@cross-site"]] == [c["params"] for c in chosen["lp"]]


def test_only_the_cross_site_rule_keys_its_settings() -> None:
    local = from_dict({"choice": {"rules": ["local"], "weight": 0.3, "pool_images": 99}}).resolved()
    assert "weight" not in local["choice"] and "pool_images" not in local["choice"]
    both = from_dict({"choice": {"rules": ["local", "cross-site"], "weight": 0.3}}).resolved()
    assert both["choice"]["weight"] == 0.3


def test_controls_of_a_tuned_method_train_at_its_choice(quickstart: Path, tiny: list[str], tmp_path: Path) -> None:
    """A head-swap control of tuned FT keeps, per client and rule, the grid point FT chose: FT's
    features with the global head distort exactly as FT does, the global features not at all."""
    controls = ["ft-global-head", "ft-global-body"]
    cfg = load_config(
        quickstart,
        [
            *tiny,
            'personalize.methods=["ft","ft-global-head","ft-global-body"]',
            "search.ft.lr=[0.0001, 0.05]",
            'choice.rules=["local","cross-site"]',
        ],
    )
    summary = run_experiment(cfg, tmp_path)
    chosen = json.loads((tmp_path / "search.json").read_text())
    for suffix in ("", "@cross-site"):
        assert {c["params"]["lr"] for c in chosen["ft" + suffix]} <= {0.0001, 0.05}
        for control in controls:
            assert chosen[control + suffix] == chosen["ft" + suffix]  # FT's choice, with FT's validation scores
        ft, head, body = (summary["methods"][m + suffix] for m in ("ft", *controls))
        assert head["distortion_own"] == pytest.approx(ft["distortion_own"], abs=1e-12) and ft["distortion_own"] > 0
        assert body["distortion_own"] == 0
    with pytest.raises(UserError, match="list ft before ft-global-head"):
        load_config(quickstart, ['personalize.methods=["ft-global-head","ft"]', "search.ft.lr=[0.01, 0.05]"])
    with pytest.raises(UserError, match=r"give the grid as \[search.ft\]"):
        load_config(quickstart, ['personalize.methods=["ft","ft-global-head"]', "search.ft-global-head.lr=[0.01]"])


def test_a_controls_results_are_keyed_on_the_grid_it_follows(quickstart: Path) -> None:
    from pftlab.experiment.runner import method_key

    def key(grid: str) -> str:
        cfg = load_config(quickstart, ['personalize.methods=["ft","ft-global-head"]', f"search.ft.lr={grid}"])
        return method_key({"config": cfg.resolved()}, "ft-global-head")

    assert key("[0.01, 0.05]") == key("[0.01, 0.05]") != key("[0.01, 0.1]")
