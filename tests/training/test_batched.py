"""The batched engine gives the plain loop's personalized weights, client by client (float tolerance)."""

from __future__ import annotations

import math

import pytest
import torch

from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import DataConfig, FederatedConfig, ModelConfig, PersonalizeConfig
from pftlab.federated import run_global_stage
from pftlab.models import build_model
from pftlab.personalize import METHODS, personalize_batch, personalize_client, supports

BUDGET = PersonalizeConfig(epochs=3, methods=["ft"], batch_size=16, weight_decay=1e-3)


@pytest.fixture(scope="module")
def setup():
    fed = build_federation(DataConfig(num_clients=5), seed=0)
    model = build_model(ModelConfig(width=8, hidden=32), fed.input_shape, 10, seed=0)
    start = run_global_stage(model, fed, FederatedConfig(rounds=5), 0)[0]
    return fed, model, start


CASES = [
    ("ft", {}),
    ("lp", {}),
    ("lp-ft", {"lp_epochs": 1}),
    ("proximal-ft", {"mu": 0.5}),
    ("surgical-ft", {"block": "backbone.block1"}),
    ("wise-ft", {"alpha": 0.5}),
    ("soup-ft", {}),
    ("flood-ft", {"level": 0.3}),
]


@pytest.mark.parametrize(("name", "params"), CASES, ids=[c[0] for c in CASES])
def test_batched_equals_loop(setup, name, params):
    fed, model, start = setup
    method = METHODS[name]
    p = method.Params.model_validate(params)
    assert supports(model, method, p, BUDGET)
    clients = fed.clients[:4]  # sizes differ, so some clients sit out the last steps
    assert len({len(c.train) for c in clients}) > 1
    with torch.no_grad():  # whatever the module holds must not matter: only `start` may
        for t in model.parameters():
            t.normal_()
    batched, losses = personalize_batch(
        model, start, method, p, BUDGET, [c.train for c in clients], [c.client_id for c in clients], seed=3
    )
    assert all(math.isfinite(v) for v in losses)
    for c, got in zip(clients, batched, strict=True):
        want = personalize_client(model, start, method, p, BUDGET, c.train, 3, c.client_id)
        assert got.keys() == want.keys()
        moved = max(float((want[k] - start[k]).abs().max()) for k in want)
        assert moved > 1e-3 or name == "wise-ft"  # the comparison is not between two copies of start
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-3, atol=1e-4)  # channels-last loop vs vmap: rounding


def test_lp_keeps_backbone_bit_exact(setup):
    fed, model, start = setup
    method = METHODS["lp"]
    out, _ = personalize_batch(
        model, start, method, method.Params(), BUDGET, [c.train for c in fed.clients], list(range(5)), seed=0
    )
    for w in out:
        assert all(torch.equal(w[k], start[k]) for k in start if not k.startswith("head."))


def test_unsupported_plans_go_to_the_loop(setup):
    _, model, _ = setup
    assert not supports(model, METHODS["sparse-ft"], METHODS["sparse-ft"].Params(), BUDGET)
    assert not supports(model, METHODS["lss-ft"], METHODS["lss-ft"].Params(), BUDGET)
    adam = BUDGET.model_copy(update={"optimizer": "adam"})
    assert not supports(model, METHODS["ft"], METHODS["ft"].Params(), adam)
    bn = build_model(ModelConfig(width=8, hidden=32, norm="batch"), (1, 8, 8), 10, seed=0)
    assert not supports(bn, METHODS["ft"], METHODS["ft"].Params(), BUDGET)
