"""Finite-sample checks of the closed forms: the only place (with the ReLU variant) where randomness enters."""

from __future__ import annotations

import numpy as np

from pftlab.core.seeding import numpy_rng
from pftlab.theory.model import Problem


def sample_inputs(problem: Problem, client: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n inputs of client i: N(0, I_d) under concept shift, e_i + eps z (z ~ N(0, I_d)) under covariate shift."""
    z = rng.standard_normal((n, problem.d))
    if problem.setting == "concept":
        return z
    x: np.ndarray = problem.means[client] + problem.eps * z
    return x


def monte_carlo_losses(
    problem: Problem, B: np.ndarray, V: np.ndarray, n: int = 200_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-client loss estimates mean((W^T x - w_j*^T x)^2) / 2 over n fresh samples, and their standard errors."""
    W = B.T @ V
    est, se = np.empty(problem.C), np.empty(problem.C)
    for j in range(problem.C):
        x = sample_inputs(problem, j, n, numpy_rng(seed, "theory/montecarlo", j))
        sq = 0.5 * (x @ (W - problem.target(j))) ** 2
        est[j], se[j] = sq.mean(), sq.std(ddof=1) / np.sqrt(n)
    return est, se
