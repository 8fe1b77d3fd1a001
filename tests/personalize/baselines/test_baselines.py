"""FedPer, FedRep and Ditto: what each keeps personal and what it averages."""

from __future__ import annotations

import pytest
import torch

from pftlab.core.errors import UserError
from pftlab.experiment.config import Config, FederatedConfig, from_dict
from pftlab.federated import run_global_stage
from pftlab.personalize import METHODS
from pftlab.personalize.baselines import BUILTIN, Baseline, train_baseline


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def config(name: str, **table) -> Config:
    raw = {"federated": {"rounds": 3, "lr": 0.05}, "personalize": {"methods": [name]}, "method": {name: table}}
    return from_dict(raw)


def run_baseline(name: str, model, fed, cfg: Config):
    spec = METHODS[name]
    assert isinstance(spec, Baseline) and spec.integrated
    return train_baseline(spec, model, fed, cfg.federated, cfg.seed, cfg.method_params(name))


def is_head(key: str) -> bool:
    return key.startswith("head.")


@pytest.mark.parametrize("name", ["fedper", "fedrep"])
def test_heads_stay_personal_and_only_the_body_is_averaged(fed, new_model, name: str) -> None:
    init = new_model().state_dict()
    model = new_model()
    personal, stats = run_baseline(name, model, fed, config(name))
    shared = model.state_dict()
    assert [cid for cid, _ in personal] == [0, 1, 2, 3] and stats.rounds == 3
    for k in init:
        if is_head(k):
            assert torch.equal(shared[k], init[k])  # the server never averaged a head
            heads = [w[k] for _, w in personal]
            assert all(not torch.equal(h, init[k]) for h in heads)
            assert all(not torch.equal(heads[0], h) for h in heads[1:])
        else:
            assert not torch.equal(shared[k], init[k])
            assert all(torch.equal(w[k], shared[k]) for _, w in personal)  # every client ends on the averaged body


def test_fedper_with_one_client_per_round_keeps_untouched_clients_on_the_shared_weights(fed, new_model) -> None:
    cfg = config("fedper").model_copy(update={"federated": FederatedConfig(rounds=1, clients_per_round=1)})
    model = new_model()
    personal, _ = run_baseline("fedper", model, fed, cfg)
    untouched = [w for _, w in personal if same(w, model.state_dict())]
    assert len(untouched) == 3


def test_fedrep_trains_the_head_before_the_body(fed, new_model) -> None:
    """With the body's lr tiny, the heads still move: they had their own epochs first."""
    cfg = config("fedrep", head_epochs=2, head_lr=0.1).model_copy(
        update={"federated": FederatedConfig(rounds=1, lr=1e-8)}
    )
    init = new_model().state_dict()
    personal, _ = run_baseline("fedrep", new_model(), fed, cfg)
    assert all((w["head.weight"] - init["head.weight"]).abs().max() > 1e-3 for _, w in personal)


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return sum(float((a[k] - b[k]).norm() ** 2) for k in a) ** 0.5


def test_ditto_global_is_fedavg_and_large_lambda_keeps_personal_models_near_it(fed, new_model) -> None:
    cfg = config("ditto", lam=0.0)
    fedavg_weights, _ = run_global_stage(new_model(), fed, cfg.federated, cfg.seed)
    gaps = {}
    for lam in (0.0, 20.0):
        model = new_model()
        personal, _ = run_baseline("ditto", model, fed, config("ditto", lam=lam, personal_epochs=2))
        assert same(model.state_dict(), fedavg_weights)
        gaps[lam] = sum(distance(w, model.state_dict()) for _, w in personal)
    assert gaps[20.0] < 0.3 * gaps[0.0]


@pytest.mark.parametrize("name", [b.name for b in BUILTIN])
def test_same_seed_same_personal_weights(fed, new_model, name: str) -> None:
    cfg = config(name)
    first, _ = run_baseline(name, new_model(), fed, cfg)
    again, _ = run_baseline(name, new_model(), fed, cfg)
    assert all(c1 == c2 and same(w1, w2) for (c1, w1), (c2, w2) in zip(first, again, strict=True))


def test_config_accepts_baselines_and_checks_their_tables() -> None:
    cfg = from_dict({"personalize": {"methods": ["lp-ft", "fedrep", "ditto"]}, "method": {"ditto": {"lam": 1.0}}})
    assert cfg.method_params("ditto").lam == 1.0 and cfg.method_params("fedrep").head_epochs == 10
    with pytest.raises(UserError, match=r"method\.ditto\.lamb"):
        from_dict({"method": {"ditto": {"lamb": 1.0}}})
    with pytest.raises(UserError, match=r"method\.fedrep\.head_epochs"):
        from_dict({"method": {"fedrep": {"head_epochs": 0}}})
    # a baseline's grid is searched like a post-hoc method's (its federated training once per point)
    grid = from_dict({"personalize": {"methods": ["fedrep"]}, "search": {"fedrep": {"head_epochs": [1, 2]}}})
    assert [p.head_epochs for p in grid.search_grid("fedrep")] == [1, 2]
    with pytest.raises(UserError, match=r"search\.fedrep: unknown key 'mu'"):
        from_dict({"personalize": {"methods": ["fedrep"]}, "search": {"fedrep": {"mu": [1, 2]}}})
