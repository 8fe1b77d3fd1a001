"""The conformance kit passes every built-in component and catches components that break its rules."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from pftlab import ALGORITHMS, BENCHMARKS, METHODS, MODELS, Phase, single, testing
from pftlab.federated import Algorithm
from pftlab.models import ModelSpec
from pftlab.personalize import Method


@pytest.mark.parametrize("name", METHODS.names())
def test_every_builtin_method_conforms(name: str) -> None:
    spec = METHODS[name]
    params = spec.Params.model_validate({"block": "backbone"}) if name == "surgical-ft" else None  # the kit's MLP
    testing.check_method(spec, params)


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_every_builtin_algorithm_conforms(name: str) -> None:
    testing.check_algorithm(ALGORITHMS[name])


@pytest.mark.parametrize("name", MODELS.names())
def test_every_builtin_model_conforms(name: str) -> None:
    testing.check_model(MODELS[name])


def test_a_builtin_benchmark_conforms() -> None:
    fed = testing.check_benchmark(BENCHMARKS["digits-quick"])
    assert fed.num_clients >= 2


def test_a_method_that_ignores_the_global_weights_is_caught() -> None:
    ft = METHODS["ft"]
    assert isinstance(ft, Method)

    def restart(model, data, params, budget, seed, client, head) -> None:
        torch.manual_seed(123)
        for p in model.parameters():
            torch.nn.init.normal_(p)

    with pytest.raises(AssertionError, match="does not depend on the global weights"):
        testing.check_method(replace(ft, name="restart", custom=restart))


def test_a_method_that_is_not_deterministic_is_caught() -> None:
    ft = METHODS["ft"]
    assert isinstance(ft, Method)

    def noisy(model, data, params, budget, seed, client, head) -> None:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))  # the global RNG, not (seed, client)

    with pytest.raises(AssertionError, match="two runs with the same seed"):
        testing.check_method(replace(ft, name="noisy", custom=noisy))


def test_a_method_that_misses_its_budget_is_caught() -> None:
    ft = METHODS["ft"]
    assert isinstance(ft, Method)
    short = replace(ft, name="short", plan=lambda p, budget: single(Phase("all", budget.epochs - 1, p.lr)))
    with pytest.raises(ValueError, match="do not fill the budget"):
        testing.check_method(short)


def test_an_algorithm_that_moves_without_local_steps_is_caught() -> None:
    fedavg = ALGORITHMS["fedavg"]

    def drift(global_weights, updates, server_state, cfg, num_clients, params):
        return {k: v + 1.0 if v.is_floating_point() else v for k, v in global_weights.items()}, server_state

    with pytest.raises(AssertionError, match="zero local steps"):
        testing.check_algorithm(Algorithm("drift", fedavg.local_update, drift))


def test_a_model_without_a_linear_head_is_caught() -> None:
    class NoHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Linear(28 * 28, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x.flatten(1))

    with pytest.raises(ValueError, match="no submodule 'head'"):
        testing.check_model(ModelSpec("nohead", "no head", lambda cfg, shape, k: NoHead()))
