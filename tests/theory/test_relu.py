"""The ReLU variant on finite samples: its gradients, its linear special case, and the ordering it shows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pftlab.theory.model import make_problem
from pftlab.theory.relu import compare, draw_samples, sample_loss_grads


@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_sample_gradients_match_autograd(activation: str) -> None:
    problem = make_problem("covariate", 1.0, 0.7)
    X, y = draw_samples(problem, activation, 300, 2).train[1]
    rng = np.random.default_rng(3)
    B = problem.B + 0.1 * rng.standard_normal(problem.B.shape)
    V = problem.head(0) + 0.1 * rng.standard_normal(problem.k)
    loss, gB, gV = sample_loss_grads(B, V, X, y, activation)
    tB, tV = torch.tensor(B, requires_grad=True), torch.tensor(V, requires_grad=True)
    h = torch.tensor(X) @ tB.T
    a = torch.relu(h) if activation == "relu" else h
    tl = 0.5 * ((a @ tV - torch.tensor(y)) ** 2).mean()
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(gB, tB.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gV, tV.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_identity_activation_reproduces_the_exact_gap() -> None:
    rows = compare(
        settings=("concept", "covariate"),
        lambdas=(1.0,),
        steps=(1, 10),
        step_sizes=(0.2,),
        activations=("identity",),
        n_train=4000,
        n_eval=4000,
    )
    for r in rows:
        assert r["gap_global_others"] == pytest.approx(r["exact_gap_global_others"], rel=0.1)
        assert r["local_lpft"] < 1e-20  # the probe fits the training sample exactly


def test_relu_keeps_the_small_step_ordering() -> None:
    """What the simulation shows: with step 0.2 FT has the lower global loss at every lambda, in both settings, as in
    the linear model (LP-FT adopts the local concept fully, FT only partly)."""
    rows = compare(
        lambdas=(0.25, 1.0, 2.0), steps=(1, 10), step_sizes=(0.2,), activations=("relu",), n_train=500, n_eval=1000
    )
    assert len(rows) == 12
    assert all(r["winner"] == "ft" for r in rows), [(r["setting"], r["lambda"], r["steps"], r["winner"]) for r in rows]
