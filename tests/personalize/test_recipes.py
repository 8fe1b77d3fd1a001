from __future__ import annotations

import pytest
import torch

from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import Config, DataConfig, ModelConfig, PersonalizeConfig
from pftlab.models import build_model, head_param_names
from pftlab.personalize import METHODS, Phase
from pftlab.training.loop import train


@pytest.fixture(scope="module")
def client():
    return build_federation(DataConfig(num_clients=4), seed=0).clients[1]


def _personalize(method: str, client, model_name: str = "cnn") -> tuple[dict, dict, set[str]]:
    cfg = Config(
        model=ModelConfig(name=model_name),
        personalize=PersonalizeConfig(epochs=3),
        method={"lp-ft": {"lp_epochs": 1}},
    )
    model = build_model(cfg.model, client.train.input_shape, 10, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    phases = METHODS[method].recipe(cfg.method_params(method), cfg.personalize)
    train(model, phases, client.train, cfg.personalize, seed=0, purpose="personalize", client=client.client_id)
    return before, model.state_dict(), head_param_names(model, "head")


@pytest.mark.parametrize("model_name", ["cnn", "mlp"])
def test_lp_leaves_backbone_bit_identical_and_trains_the_head(client, model_name: str) -> None:
    before, after, head = _personalize("lp", client, model_name)
    for name in before:
        if name in head:
            assert not torch.equal(before[name], after[name]), f"LP did not train head tensor {name}"
        else:
            assert torch.equal(before[name], after[name]), f"LP changed backbone tensor {name}"


@pytest.mark.parametrize("method", ["ft", "lp-ft"])
def test_ft_and_lpft_move_every_tensor(client, method: str) -> None:
    before, after, _ = _personalize(method, client)
    moved = [name for name in before if not torch.equal(before[name], after[name])]
    assert moved == list(before), f"{method} left {set(before) - set(moved)} unchanged"


def test_lpft_recipe_splits_the_budget() -> None:
    cfg = Config.model_validate(
        {"personalize": {"epochs": 15}, "method": {"lp-ft": {"lp_epochs": 4, "lp_lr": 0.2, "ft_lr": 0.003}}}
    )
    phases = METHODS["lp-ft"].recipe(cfg.method_params("lp-ft"), cfg.personalize)
    assert phases == [Phase("head", 4, 0.2), Phase("all", 11, 0.003)]
    assert sum(p.epochs for p in phases) == cfg.personalize.epochs
    assert METHODS["lp"].backbone_frozen(cfg.method_params("lp"), cfg.personalize)
    assert not METHODS["lp-ft"].backbone_frozen(cfg.method_params("lp-ft"), cfg.personalize)


def test_lpft_with_zero_lp_epochs_is_ft_with_ft_lr(client) -> None:
    """Same data order for every method: LP-FT with no LP and FT's lr ends at FT's weights."""
    cfg = Config(model=ModelConfig(), personalize=PersonalizeConfig(epochs=2, methods=["ft"]))
    results = []
    for phases in (
        [Phase("all", 2, 0.01)],
        METHODS["lp-ft"].recipe(METHODS["lp-ft"].Params(lp_epochs=0, ft_lr=0.01), cfg.personalize),
    ):
        model = build_model(cfg.model, client.train.input_shape, 10, seed=0)
        train(model, phases, client.train, cfg.personalize, seed=0, purpose="personalize", client=1)
        results.append(model.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
