"""Closed forms of the linear model: losses against Monte Carlo, gradients against autograd, the exact probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pftlab.core.errors import UserError
from pftlab.theory.model import exact_probe, loss_and_grads, make_problem, population_loss
from pftlab.theory.montecarlo import monte_carlo_losses
from pftlab.theory.simulate import evaluate, run


@pytest.mark.parametrize(("setting", "eps"), [("concept", 0.0), ("covariate", 0.5), ("covariate", 1.0)])
def test_closed_form_losses_match_monte_carlo(setting: str, eps: float) -> None:
    """200,000 samples per client; every per-client loss within 5 standard errors (about 1% here)."""
    problem = make_problem(setting, 1.5, eps)
    traj = run(problem, "ft", 0.3, 3, client=1)  # parameters away from every target
    exact = evaluate(problem, 1, traj.B, traj.V)
    W = traj.B.T @ traj.V
    per = np.array([population_loss(W, problem.moments[j], problem.target(j)) for j in range(problem.C)])
    est, se = monte_carlo_losses(problem, traj.B, traj.V, n=200_000, seed=7)
    assert np.all(np.abs(est - per) <= 5 * se), (est, per, se)
    assert np.all(se / per < 0.01)
    others = [0, 2, 3]
    assert exact["local"] == pytest.approx(est[1], abs=5 * se[1])
    se_others = np.sqrt(np.sum(se[others] ** 2)) / len(others)
    assert exact["global_others"] == pytest.approx(est[others].mean(), abs=5 * se_others)
    assert exact["global_mixture"] == pytest.approx(est.mean(), abs=5 * np.sqrt(np.sum(se**2)) / problem.C)


@pytest.mark.parametrize("setting", ["concept", "covariate"])
def test_analytic_gradients_match_autograd(setting: str) -> None:
    problem = make_problem(setting, 0.8, 0.4, d=9, m=3, C=4)
    rng = np.random.default_rng(0)
    B = problem.B + 0.1 * rng.standard_normal(problem.B.shape)
    V = problem.head(2) + 0.1 * rng.standard_normal(problem.k)
    M, w = problem.moments[2], problem.target(2)
    loss, gB, gV = loss_and_grads(B, V, M, w)
    tB = torch.tensor(B, requires_grad=True)
    tV = torch.tensor(V, requires_grad=True)
    r = tB.T @ tV - torch.tensor(w)
    tl = 0.5 * r @ torch.tensor(M) @ r
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-14)
    np.testing.assert_allclose(gB, tB.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gV, tV.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_population_loss_is_the_sample_loss_under_the_empirical_second_moment() -> None:
    """E[(u^T x)^2]/2 = u^T M u / 2 exactly when M is the sample's own second moment (mean included)."""
    problem = make_problem("covariate", 1.0, 0.3)
    x = problem.means[0] + 0.3 * np.random.default_rng(1).standard_normal((500, problem.d))
    B, V = problem.start()
    u = B.T @ V - problem.target(0)
    assert population_loss(B.T @ V, x.T @ x / len(x), problem.target(0)) == pytest.approx(0.5 * np.mean((x @ u) ** 2))


@pytest.mark.parametrize(("setting", "eps"), [("concept", 0.0), ("covariate", 0.5), ("covariate", 0.0)])
def test_exact_probe_leaves_B_untouched_and_kills_its_gradient(setting: str, eps: float) -> None:
    problem = make_problem(setting, 1.2, eps)
    B_before = problem.B.copy()
    for i in range(problem.C):
        lp = run(problem, "lp-ft", 0.3, 0, client=i)
        assert np.array_equal(lp.B, B_before)  # bit-identical: the probe never writes to B
        assert np.array_equal(problem.B, B_before)
        M, w = problem.moments[i], problem.target(i)
        _, gB_lp, _ = loss_and_grads(lp.B, lp.V, M, w)
        B0, V0 = problem.start()
        _, gB_ft, _ = loss_and_grads(B0, V0, M, w)
        assert np.linalg.norm(gB_lp) < 1e-12 * np.linalg.norm(gB_ft)  # the LP-FT mechanism: nothing reaches B
        assert lp.local[0] < 1e-25
        if eps > 0 or setting == "concept":
            np.testing.assert_allclose(lp.V, problem.head(i), atol=1e-12)  # the probe recovers V_i exactly


def test_rank_deficient_probe_is_the_minimum_change() -> None:
    """eps = 0: client i only sees e_i; the probe moves V by the least amount that fits it."""
    problem = make_problem("covariate", 1.0, 0.0)
    B, V0 = problem.start()
    M, w = problem.moments[0], problem.target(0)
    V = exact_probe(B, V0, M, w)
    assert population_loss(B.T @ V, M, w) < 1e-28
    a = B @ problem.means[0]
    np.testing.assert_allclose(V - V0, a * (a @ (V - V0)) / (a @ a), atol=1e-14)  # along B e_i only


@pytest.mark.parametrize(
    "kwargs",
    [
        {"setting": "label"},
        {"d": 5},
        {"C": 1},
        {"lambda_": -1.0},
        {"eps": float("nan")},
    ],
)
def test_bad_problems_raise_user_error(kwargs: dict) -> None:
    args = {"setting": "concept", "lambda_": 1.0, "eps": 0.5, "d": 8, "m": 2, "C": 4} | kwargs
    with pytest.raises(UserError):
        make_problem(**args)
