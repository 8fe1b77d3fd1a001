"""Beyond the linear model: the same construction with a ReLU after B, simulated on finite samples.

Teacher for client i: y = V_i^T relu(B x); student f(x) = V^T relu(B x) starts from (B, V0) exactly as in the linear
model. Client i trains on a fixed sample of n_train inputs (full-batch gradient descent on the mean of (f - y)^2 / 2);
LP is the exact least-squares fit of V on that sample (the minimum-norm change from V0); every loss is measured on fresh
samples of n_eval inputs per client. The samples depend on (seed, setting, client) only, never on lambda, so curves over
lambda are smooth and FT and LP-FT are always scored on the same points. activation="identity" runs the linear model
through the same finite-sample code: a check against the exact closed forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pftlab.core.errors import UserError
from pftlab.core.seeding import numpy_rng
from pftlab.theory.model import Problem, make_problem
from pftlab.theory.montecarlo import sample_inputs
from pftlab.theory.simulate import client_mean
from pftlab.theory.sweep import gap, winner

ACTIVATIONS = ("relu", "identity")
LOSSES = ("local", "global_others", "global_mixture")


def _act(h: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    if activation == "relu":
        return np.maximum(h, 0.0), (h > 0).astype(h.dtype)
    return h, np.ones_like(h)


@dataclass(frozen=True)
class Samples:
    """Each client's training inputs and targets, and evaluation inputs and targets."""

    train: list[tuple[np.ndarray, np.ndarray]]
    evals: list[tuple[np.ndarray, np.ndarray]]


def draw_samples(problem: Problem, activation: str, n_train: int, n_eval: int, seed: int = 0) -> Samples:
    if activation not in ACTIVATIONS:
        raise UserError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")

    def labelled(purpose: str, j: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = sample_inputs(problem, j, n, numpy_rng(seed, purpose, problem.setting, j))
        return x, _act(x @ problem.B.T, activation)[0] @ problem.head(j)

    C = problem.C
    return Samples(
        [labelled("theory/relu/train", j, n_train) for j in range(C)],
        [labelled("theory/relu/eval", j, n_eval) for j in range(C)],
    )


def sample_loss_grads(
    B: np.ndarray, V: np.ndarray, X: np.ndarray, y: np.ndarray, activation: str
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean of (V^T act(B x) - y)^2 / 2 over the sample, and its gradients with respect to B and V."""
    H = X @ B.T
    A, dA = _act(H, activation)
    r = A @ V - y
    n = len(y)
    gH = (r[:, None] * V[None, :]) * dA
    return 0.5 * float(r @ r) / n, gH.T @ X / n, A.T @ r / n


def finite_sample_run(
    problem: Problem,
    samples: Samples,
    client: int,
    method: str,
    step: float,
    record: Sequence[int],
    activation: str = "relu",
) -> dict[int, dict[str, float]]:
    """FT or LP-FT for one client on its own sample: local, global_others, global_mixture at each step in record."""
    X, y = samples.train[client]
    B, V = problem.start()
    if method == "lp-ft":
        F = _act(X @ B.T, activation)[0]
        V = V + np.linalg.lstsq(F, y - F @ V, rcond=None)[0]
    others = [j for j in range(problem.C) if j != client]
    out: dict[int, dict[str, float]] = {}
    wanted, horizon = set(record), max(record)
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(horizon + 1):
            if t in wanted:
                if diverged:
                    out[t] = dict.fromkeys(LOSSES, np.inf)
                else:
                    per = np.array([sample_loss_grads(B, V, Xj, yj, activation)[0] for Xj, yj in samples.evals])
                    out[t] = {
                        "local": float(per[client]),
                        "global_others": float(per[others].mean()),
                        "global_mixture": float(per.mean()),
                    }
            if t == horizon or diverged:
                continue
            _, gB, gV = sample_loss_grads(B, V, X, y, activation)
            B, V = B - step * gB, V - step * gV
            diverged = not (np.isfinite(B).all() and np.isfinite(V).all() and np.abs(B).max() < 1e100)
    return out


def compare(
    settings: Sequence[str] = ("concept", "covariate"),
    lambdas: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 3.0),
    steps: Sequence[int] = (1, 10, 100),
    step_sizes: Sequence[float] = (0.2, 0.6, 1.3),
    eps: float = 0.5,
    d: int = 8,
    m: int = 2,
    C: int = 4,
    *,
    activations: Sequence[str] = ACTIVATIONS,
    n_train: int = 2000,
    n_eval: int = 4000,
    head_norm: float = 1.0,
    seed: int = 0,
) -> list[dict[str, float | int | str]]:
    """Client-mean losses of FT and LP-FT per (activation, setting, step size, lambda, steps).

    Rows of the identity activation also carry the exact (population) gap of the linear model.
    """
    if not lambdas or not steps or min(steps) < 0:
        raise UserError("give at least one lambda and step counts >= 0")
    if not step_sizes or any(not np.isfinite(s) or s <= 0 for s in step_sizes):
        raise UserError("every step size must be a finite number > 0")
    if n_train < 1 or n_eval < 2:
        raise UserError(f"need n_train >= 1 and n_eval >= 2 (got {n_train}, {n_eval})")
    rows: list[dict[str, float | int | str]] = []
    for activation in activations:
        for setting in settings:
            for lam in lambdas:
                problem = make_problem(setting, lam, eps, d, m, C, head_norm=head_norm, seed=seed)
                samples = draw_samples(problem, activation, n_train, n_eval, seed)
                for step in step_sizes:
                    rows.extend(_rows(problem, samples, activation, step, steps))
    return rows


def _rows(
    problem: Problem, samples: Samples, activation: str, step: float, steps: Sequence[int]
) -> list[dict[str, float | int | str]]:
    res = {
        method: [finite_sample_run(problem, samples, i, method, step, steps, activation) for i in range(problem.C)]
        for method in ("ft", "lp-ft")
    }
    exact = None
    if activation == "identity":
        exact = {method: client_mean(problem, method, step, max(steps)) for method in ("ft", "lp-ft")}
    rows = []
    for t in sorted(set(steps)):
        row: dict[str, float | int | str] = {
            "activation": activation,
            "setting": problem.setting,
            "eps": problem.eps if problem.setting == "covariate" else 0.0,
            "lambda": problem.lambda_,
            "step_size": step,
            "steps": t,
            "n_train": len(samples.train[0][1]),
            "n_eval": len(samples.evals[0][1]),
        }
        losses: dict[str, float] = {}
        for method, tag in (("ft", "ft"), ("lp-ft", "lpft")):
            for name in LOSSES:
                losses[f"{name}_{tag}"] = float(np.mean([r[t][name] for r in res[method]]))
        row.update(losses)
        row["gap_global_others"] = gap(losses["global_others_ft"], losses["global_others_lpft"])
        row["winner"] = winner(losses["global_others_ft"], losses["global_others_lpft"])
        row["exact_gap_global_others"] = (
            gap(float(exact["ft"]["global_others"][t]), float(exact["lp-ft"]["global_others"][t])) if exact else np.nan
        )
        rows.append(row)
    return rows
