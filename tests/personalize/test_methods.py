"""Each method's defining property, on a real digits client (scikit-learn's bundled digits)."""

from __future__ import annotations

import itertools

import pytest
import torch

from pftlab.core.errors import UserError
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import DataConfig, FederatedConfig, ModelConfig, PersonalizeConfig
from pftlab.federated import run_global_stage
from pftlab.models import build_model
from pftlab.personalize import METHODS, personalize_client, recipe
from pftlab.training.loop import snip_mask, train, trained_params

BUDGET = PersonalizeConfig(epochs=4, methods=["ft"])


@pytest.fixture(scope="module")
def client():
    return build_federation(DataConfig(num_clients=4), seed=0).clients[2]


@pytest.fixture(scope="module")
def start():
    """A briefly trained FedAvg model, so gradients are not those of a random init."""
    fed = build_federation(DataConfig(num_clients=4), seed=0)
    model = build_model(ModelConfig(width=8, hidden=32), fed.input_shape, 10, seed=0)
    return run_global_stage(model, fed, FederatedConfig(rounds=10), 0)[0]


def run(method: str, client, start, budget=BUDGET, norm: str = "none", **params):
    model = build_model(ModelConfig(width=8, hidden=32, norm=norm), client.train.input_shape, 10, seed=0)
    if norm == "none":
        model.load_state_dict(start)
        begin = start
    else:
        begin = {k: v.detach().clone() for k, v in model.state_dict().items()}
    spec = METHODS[method]
    weights = personalize_client(model, begin, spec, spec.Params(**params), budget, client.train, 0, client.client_id)
    return weights, model


def distance(a, b) -> float:
    return sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5


@pytest.mark.parametrize("name", [n for n, spec in METHODS.items() if not spec.integrated])
def test_every_method_fills_the_budget_and_runs(name: str, client, start) -> None:
    spec = recipe(name)
    budget = PersonalizeConfig(epochs=3, methods=["ft"])
    params = spec.Params(**({"lp_epochs": 1} if "lp_epochs" in spec.Params.model_fields else {}))
    for r in spec.checked_plan(params, budget).runs:
        assert sum(p.epochs for p in r.phases) == 3
    weights, _ = run(name, client, start, budget, **params.model_dump())
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_sparse_ft_changes_only_unmasked_weights_and_freezes_the_rate(client, start) -> None:
    rate = 0.8
    model = build_model(ModelConfig(width=8, hidden=32), client.train.input_shape, 10, seed=0)
    model.load_state_dict(start)
    x, y = torch.from_numpy(client.train.x), torch.from_numpy(client.train.y)
    mask = snip_mask(model, trained_params(model, "all", "head"), x, y, rate, BUDGET.batch_size)
    total = sum(m.numel() for m in mask.values())
    frozen = sum(int((~m).sum()) for m in mask.values())
    assert abs(frozen / total - rate) <= 1 / total

    weights, _ = run("sparse-ft", client, start, sparsity=rate)
    changed = {k: weights[k] != start[k] for k in mask}
    assert all(not (changed[k] & ~mask[k]).any() for k in mask), "a masked weight moved"
    n_changed = sum(int(c.sum()) for c in changed.values())
    assert n_changed > 0.9 * (total - frozen), "most unmasked weights should move"


def test_proximal_distance_to_global_falls_as_mu_grows(client, start) -> None:
    dists = [distance(run("proximal-ft", client, start, mu=mu, lr=0.05)[0], start) for mu in (0.0, 1.0, 10.0, 30.0)]
    assert all(a > b for a, b in itertools.pairwise(dists)), dists
    ft, _ = run("ft", client, start, lr=0.05)
    assert abs(dists[0] - distance(ft, start)) < 1e-6, "mu = 0 is plain FT"


def test_soup_is_the_mean_of_its_ingredients(client, start) -> None:
    lrs = [0.01, 0.03]
    soup, _ = run("soup-ft", client, start, ingredients=3, lrs=lrs)
    spec = METHODS["soup-ft"]
    ingredients = []
    for r in spec.checked_plan(spec.Params(ingredients=3, lrs=lrs), BUDGET).runs:
        model = build_model(ModelConfig(width=8, hidden=32), client.train.input_shape, 10, seed=0)
        model.load_state_dict(start)
        train(model, r.phases, client.train, BUDGET, 0, r.order, client.client_id)
        ingredients.append(model.state_dict())
    assert len({r.order for r in spec.checked_plan(spec.Params(ingredients=3, lrs=lrs), BUDGET).runs}) == 3
    for k in soup:
        assert torch.allclose(soup[k], sum(i[k] for i in ingredients) / 3, atol=1e-6)
    assert distance(ingredients[0], ingredients[1]) > 1e-3


def test_wise_alpha_0_is_global_and_1_is_ft(client, start) -> None:
    at0, _ = run("wise-ft", client, start, alpha=0.0)
    at1, _ = run("wise-ft", client, start, alpha=1.0)
    half, _ = run("wise-ft", client, start, alpha=0.5)
    ft, _ = run("ft", client, start)
    assert all(torch.equal(at0[k], start[k]) for k in start)
    assert all(torch.equal(at1[k], ft[k]) for k in ft)
    assert all(torch.allclose(half[k], (start[k] + ft[k]) / 2, atol=1e-6) for k in ft)


@pytest.mark.parametrize("block", ["backbone.block1", "backbone.features", "head"])
def test_surgical_ft_changes_only_its_block(block: str, client, start) -> None:
    weights, _ = run("surgical-ft", client, start, block=block, lr=0.05)
    for k in start:
        if k.startswith(block + "."):
            assert not torch.equal(weights[k], start[k]), f"{k} in the block did not train"
        else:
            assert torch.equal(weights[k], start[k]), f"{k} outside the block changed"


def test_surgical_ft_unknown_block_is_a_user_error(client, start) -> None:
    with pytest.raises(UserError, match=r"no trainable block 'backbone\.block9'.*backbone\.block1"):
        run("surgical-ft", client, start, block="backbone.block9")


def test_flooding_holds_the_training_loss_at_its_level(client, start) -> None:
    """Below the level a batch takes an ascent step, so once the loss reaches b it stays there: the epoch means
    never fall well below b, where plain FT goes far below. With momentum the ascent overshoots, so the means sit
    0.07-0.23 above b, by amounts that differ with the thread count (summation order): the bounds allow for that."""
    budget = PersonalizeConfig(epochs=15, methods=["ft"])
    level = 0.5
    model = build_model(ModelConfig(width=8, hidden=32), client.train.input_shape, 10, seed=0)
    model.load_state_dict(start)
    spec = METHODS["flood-ft"]
    losses: list[float] = []
    recipe = spec.recipe(spec.Params(level=level, lr=0.05), budget)
    train(model, recipe, client.train, budget, 0, "p", 2, on_epoch=lambda epoch, loss: losses.append(loss))
    model.load_state_dict(start)
    plain = train(model, METHODS["ft"].recipe(METHODS["ft"].Params(lr=0.05), budget), client.train, budget, 0, "p", 2)
    assert plain < level - 0.2, "without flooding the loss must fall well below the level, or the test proves nothing"
    assert len(losses) == 15
    assert min(losses[7:]) > level - 0.05, losses
    assert sum(losses[-5:]) / 5 < level + 0.3, losses


def test_kumar_lpft_freezes_batchnorm_statistics_and_fits_the_probe(client, start) -> None:
    weights, _ = run("lp-ft-kumar", client, start, norm="batch", lp_epochs=2, ft_lr=0.001, lp_l2=1e-2)
    fresh = build_model(ModelConfig(width=8, hidden=32, norm="batch"), client.train.input_shape, 10, seed=0)
    stats = [k for k in weights if "running_" in k]
    assert stats and all(torch.equal(weights[k], fresh.state_dict()[k]) for k in stats)
    moved = [k for k in weights if k.endswith("weight") and not torch.equal(weights[k], fresh.state_dict()[k])]
    assert any(k.startswith("backbone") for k in moved) and "head.weight" in moved


def test_kumar_probe_reaches_the_logistic_regression_optimum(client, start) -> None:
    from pftlab.models import features, head_module

    budget = PersonalizeConfig(epochs=2, methods=["ft"])
    spec = METHODS["lp-ft-kumar"]
    model = build_model(ModelConfig(width=8, hidden=32), client.train.input_shape, 10, seed=0)
    model.load_state_dict(start)
    probe = spec.recipe(spec.Params(lp_epochs=2, lp_l2=1e-2, lp_max_iter=500), budget)
    train(model, probe, client.train, budget, 0, "p", 2)
    head = head_module(model, "head")
    feats = features(model, "head", torch.from_numpy(client.train.x))
    loss = torch.nn.functional.cross_entropy(head(feats), torch.from_numpy(client.train.y))
    loss = loss + 1e-2 / 2 * (head.weight**2).sum()
    grads = torch.autograd.grad(loss, [head.weight, head.bias])
    assert max(float(g.abs().max()) for g in grads) < 1e-3


def test_lss_with_one_member_and_no_affinity_is_ft(client, start) -> None:
    lss, _ = run("lss-ft", client, start, pool=1, affinity=0.0, diversity=0.0)
    ft, _ = run("ft", client, start)
    assert all(torch.allclose(lss[k], ft[k], atol=1e-6) for k in ft)


def test_lss_affinity_pulls_toward_the_start(client, start) -> None:
    loose, _ = run("lss-ft", client, start, pool=2, affinity=0.01, diversity=0.0, lr=0.05)
    tight, _ = run("lss-ft", client, start, pool=2, affinity=10.0, diversity=0.0, lr=0.05)
    assert distance(tight, start) < distance(loose, start)


def test_lss_refuses_an_unbounded_loss() -> None:
    from pftlab.experiment.config import from_dict

    with pytest.raises(UserError, match=r"diversity=0\.2 must be below affinity=0\.1"):
        from_dict({"personalize": {"methods": ["lss-ft"]}, "method": {"lss-ft": {"diversity": 0.2}}})


def test_head_swap_controls_split_ft_into_head_and_features(client, start) -> None:
    ft, _ = run("ft", client, start)
    with_global_head, _ = run("ft-global-head", client, start)
    with_ft_head, _ = run("ft-global-body", client, start)
    head = [k for k in ft if k.startswith("head.")]
    body = [k for k in ft if not k.startswith("head.")]
    assert head and body
    assert distance({k: ft[k] for k in head}, {k: start[k] for k in head}) > 0  # FT moved the head
    for k in body:  # FT's features, the global head
        assert torch.equal(with_global_head[k], ft[k]) and torch.equal(with_ft_head[k], start[k]), k
    for k in head:  # the global features, FT's head
        assert torch.equal(with_global_head[k], start[k]) and torch.equal(with_ft_head[k], ft[k]), k


def test_head_swap_needs_a_head(client, start) -> None:
    from pftlab.personalize.recipe import Plan, Run

    plan = Plan((Run(()),), keep_global="head")
    with pytest.raises(ValueError, match="no weights under the head 'classifier'"):
        plan.finish(start, [start], "classifier")


def test_controls_follow_fts_parameters_and_grid() -> None:
    from pftlab.experiment.config import from_dict

    cfg = from_dict({"personalize": {"methods": ["ft", "ft-global-head"]}, "method": {"ft": {"lr": 0.03}}})
    assert cfg.method_params("ft-global-head").lr == 0.03 and cfg.search_grid("ft-global-head")[0].lr == 0.03
    with pytest.raises(UserError, match=r"\[method.ft-global-body\]: ft-global-body runs at ft's parameters"):
        from_dict({"personalize": {"methods": ["ft-global-body"]}, "method": {"ft-global-body": {"lr": 0.1}}})
    tuned = from_dict({"personalize": {"methods": ["ft", "ft-global-head"]}, "search": {"ft": {"lr": [0.01, 0.1]}}})
    assert [p.lr for p in tuned.search_grid("ft-global-head")] == [0.01, 0.1]
    with pytest.raises(UserError, match="control of ft and takes ft's choice"):
        from_dict({"personalize": {"methods": ["ft", "ft-global-head"]}, "search": {"ft-global-head": {"lr": [0.1]}}})
    # a run's config.toml holds the control's resolved parameters (FT's): it loads again
    again = from_dict(cfg.resolved())
    assert again.method_params("ft-global-head") == cfg.method_params("ft-global-head")
    with pytest.raises(UserError, match=r"\[method.ft-global-head\]: ft-global-head runs at ft's parameters"):
        from_dict({**cfg.resolved(), "method": {"ft": {"lr": 0.03}, "ft-global-head": {"lr": 0.02}}})


def test_flower_refuses_a_control_of_a_tuned_method() -> None:
    from pftlab.experiment.config import from_dict
    from pftlab.integrations.flower.steps import check_methods

    methods = {"methods": ["ft", "ft-global-head"]}
    check_methods(from_dict({"personalize": methods}))  # FT at one setting: the control is FT's own model
    with pytest.raises(
        UserError, match=r"\['ft-global-head'\]: a control of a method with a grid cannot run on Flower"
    ):
        check_methods(from_dict({"personalize": methods, "search": {"ft": {"lr": [0.01, 0.1]}}}))
