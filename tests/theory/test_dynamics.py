"""The one-step formula, the FT vs LP-FT orderings the simulation shows, the threshold, stability."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pftlab.theory.model import loss_and_grads, make_problem
from pftlab.theory.simulate import (
    client_mean,
    lp_stability_lambda,
    one_step_formula,
    onestep_gap_coefficients,
    run,
    sharpness,
    simulate,
)
from pftlab.theory.sweep import find_threshold, sweep


@pytest.mark.parametrize(("setting", "eps"), [("concept", 0.0), ("covariate", 0.5), ("covariate", 1.3)])
@pytest.mark.parametrize("lam", [0.3, 2.0])
def test_first_simulated_step_matches_the_formula(setting: str, eps: float, lam: float) -> None:
    problem = make_problem(setting, lam, eps, d=9, m=3, C=4)
    B0, V0 = problem.start()
    for i in range(problem.C):
        ft = run(problem, "ft", 0.37, 1, client=i)
        f = one_step_formula(problem, i, 0.37)
        assert np.abs(ft.B - B0 - f.delta_B).max() < 1e-10
        assert np.abs(ft.V - V0 - f.delta_V).max() < 1e-10
        assert np.abs(ft.B.T @ ft.V - f.W1).max() < 1e-10


def test_concept_shift_step_tilts_shared_rows_toward_the_private_direction() -> None:
    """Delta B_r = step * lambda * V_com[r] * p_i for shared rows r; private rows do not move."""
    lam, eta = 1.7, 0.25
    problem = make_problem("concept", lam, 0.0, d=10, m=3, C=5, head_norm=2.0)
    problem = dataclasses.replace(problem, V_com=np.array([1.5, -0.5, 0.75]))  # unequal head weights
    B0 = problem.B
    for i in range(problem.C):
        dB = run(problem, "ft", eta, 1, client=i).B - B0
        for r in range(problem.m):
            np.testing.assert_allclose(dB[r], eta * lam * problem.V_com[r] * problem.private(i), atol=1e-12)
        assert np.abs(dB[problem.m :]).max() == 0.0


@pytest.mark.parametrize(("setting", "eps"), [("concept", 0.0), ("covariate", 0.7), ("covariate", 1.2)])
def test_one_step_global_gap_is_the_quartic(setting: str, eps: float) -> None:
    for lam in (0.2, 1.0, 3.0):
        problem = make_problem(setting, lam, eps)
        for i in range(problem.C):
            a = onestep_gap_coefficients(problem, i, 0.45)
            sim = run(problem, "ft", 0.45, 1, i).global_others[1] - run(problem, "lp-ft", 0.45, 0, i).global_others[0]
            assert sim == pytest.approx(lam**2 * (a[0] + a[1] * lam + a[2] * lam**2), rel=1e-9, abs=1e-13)
            if setting == "concept":
                alpha = 0.45 * (1 + problem.V_com @ problem.V_com)
                np.testing.assert_allclose(a, [(alpha**2 - 1) / 2, 0, 0], atol=1e-14)


def test_concept_shift_small_lambda_lp_ft_wins_only_when_the_ft_step_overshoots() -> None:
    """What the simulation shows: |V_com| = 1, so alpha = 2 * step. step 0.7 (alpha 1.4): LP-FT better after one step
    (and after any odd number of small steps); step 0.1 (alpha 0.2): FT better at every step up to 50."""
    problem = make_problem("concept", 0.1, 0.0)
    ft, lp = client_mean(problem, "ft", 0.7, 3), client_mean(problem, "lp-ft", 0.7, 3)
    assert ft["global_others"][1] > lp["global_others"][1]
    assert ft["global_others"][2] < lp["global_others"][2]  # the oscillation comes back on the near side
    assert ft["global_others"][3] > lp["global_others"][3]
    ft, lp = client_mean(problem, "ft", 0.1, 50), client_mean(problem, "lp-ft", 0.1, 50)
    assert np.all(ft["global_others"][1:] < lp["global_others"][1:])
    assert np.all(ft["local"][1:] > lp["local"][1:])  # ... while its local loss is worse: partial adoption
    assert np.all(ft["distortion"][1:] > 1e-6)  # FT moves the features, LP-FT does not
    assert np.all(lp["distortion"] < 1e-25)  # rounding only


def test_feature_distortion_costs_other_clients_only_under_covariate_shift() -> None:
    """Concept shift: FT tilts rows toward p_i, itself a row, so the row space of B is kept and a head re-fitted for
    any other client loses nothing (feature_others = 0). Covariate shift: rows tilt toward M_i p_i, which has a part
    along e_i outside the row space, so even a re-fitted head cannot recover the other clients' targets."""
    for setting, eps in (("concept", 0.0), ("covariate", 0.5)):
        problem = make_problem(setting, 1.0, eps)
        ft, lp = client_mean(problem, "ft", 0.2, 50), client_mean(problem, "lp-ft", 0.2, 50)
        assert np.all(ft["distortion"][1:] > 1e-3)
        assert np.all(lp["feature_others"] < 1e-20)
        if setting == "concept":
            assert np.all(ft["feature_others"] < 1e-20)
        else:
            assert np.all(ft["feature_others"][1:] > 1e-6)


def test_lp_ft_global_loss_is_the_local_oracle() -> None:
    """The exact probe reaches w_i*, so LP-FT's global loss is lambda^2 under concept shift, whatever the steps."""
    for lam in (0.5, 1.0):
        traj = simulate("concept", lam, 0.0, 8, 2, 4, 0.2, 20, "lp-ft")
        np.testing.assert_allclose(traj.global_others, lam**2, rtol=1e-12)
        np.testing.assert_allclose(traj.global_mixture, lam**2 * 3 / 4, rtol=1e-12)


def test_simulation_is_deterministic() -> None:
    a = simulate("covariate", 1.1, 0.6, 8, 2, 4, 0.4, 30, "ft", client=2)
    b = simulate("covariate", 1.1, 0.6, 8, 2, 4, 0.4, 30, "ft", client=2)
    assert all(np.array_equal(a.metrics[k], b.metrics[k]) for k in a.metrics)
    assert np.array_equal(a.B, b.B) and np.array_equal(a.V, b.V)


def test_threshold_bisection_finds_the_one_step_root() -> None:
    """covariate, eps 0.8, step 0.7, seed 0: the client-mean quartic has one positive root (FT better below it)."""
    th = find_threshold("covariate", eps=0.8, step=0.7, steps=1, lam_lo=0.05, lam_hi=3.0, n_grid=30)
    assert th.lambda_star is None  # LP-FT is not better at small lambda here ...
    assert th.onestep_roots is not None and len(th.onestep_roots) == 1
    assert th.crossings == pytest.approx(th.onestep_roots, abs=1e-5)  # ... and takes over beyond the root


def test_threshold_exists_after_five_steps() -> None:
    """covariate, eps 1, step 0.5, 5 steps, seed 0: LP-FT better up to lambda* ~ 1.745, FT better just beyond."""
    th = find_threshold("covariate", eps=1.0, step=0.5, steps=5, lam_lo=0.05, lam_hi=2.5, n_grid=40, tol=1e-4)
    assert th.lambda_star == pytest.approx(1.745, abs=2e-3)
    assert len(th.crossings) >= 2


def test_lp_ft_start_is_unstable_beyond_the_stability_lambda() -> None:
    """Concept shift: sharpness at (B, V_i) is 1 + |V_com|^2 + lambda^2; a 1e-9 nudge grows iff step * sharpness > 2."""
    eta = 0.6
    lam_stab = lp_stability_lambda(make_problem("concept", 1.0, 0.0), eta)
    assert lam_stab == pytest.approx(np.sqrt(2 / eta - 2))
    for lam, grows in ((0.8 * lam_stab, False), (1.2 * lam_stab, True)):
        problem = make_problem("concept", lam, 0.0)
        B, V = problem.B.copy(), problem.head(0)
        assert sharpness(problem, 0, B, V) == pytest.approx(2 + lam**2)
        V = V + 1e-9 * np.random.default_rng(0).standard_normal(problem.k)
        M, w = problem.moments[0], problem.target(0)
        first = loss_and_grads(B, V, M, w)[0]
        for _ in range(60):
            _, gB, gV = loss_and_grads(B, V, M, w)
            B, V = B - eta * gB, V - eta * gV
        assert (loss_and_grads(B, V, M, w)[0] > first) == grows


def test_sweep_rows_cover_the_grid() -> None:
    rows = sweep("covariate", [0.5, 1.0], [0, 3], [0.2, 0.5], eps=0.5)
    assert len(rows) == 8
    for r in rows:
        assert r["gap_global_others"] == pytest.approx(r["global_others_ft"] - r["global_others_lpft"])
        if r["steps"] == 0:
            assert r["distortion_ft"] == 0.0 and r["local_lpft"] < 1e-25


@pytest.mark.parametrize(
    ("setting", "eps", "step"), [("concept", 0.0, 0.7), ("covariate", 0.5, 0.3), ("covariate", 1.0, 0.5)]
)
def test_small_lambda_gap_is_the_linear_response(setting: str, eps: float, step: float) -> None:
    """gap(t) / lambda^2 -> G_i(t) as lambda -> 0, for every step count t (here lambda = 1e-4, error O(lambda))."""
    from pftlab.theory.simulate import linear_response_gap

    lam = 1e-4
    problem = make_problem(setting, lam, eps)
    for i in range(problem.C):
        G = linear_response_gap(problem, i, step, 8)
        ft, lp = run(problem, "ft", step, 8, i), run(problem, "lp-ft", step, 8, i)
        np.testing.assert_allclose((ft.global_others - lp.global_others) / lam**2, G, atol=1e-4)
    if setting == "concept":
        alpha = step * (1 + problem.V_com @ problem.V_com)
        t = np.arange(9)
        np.testing.assert_allclose(G, ((1 - (1 - alpha) ** t) ** 2 - 1) / 2, atol=1e-14)
