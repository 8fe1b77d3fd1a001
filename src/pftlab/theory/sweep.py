"""Sweeps over (lambda, steps, step size) and the search for the threshold lambda*.

The gap is global_others(FT) - global_others(LP-FT), averaged over the C clients: positive means LP-FT has the lower
global loss. A non-finite loss means that method diverged: +inf (FT diverged, LP-FT did not) counts as LP-FT better,
-inf as FT better, nan (both diverged) as neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pftlab.core.errors import UserError
from pftlab.theory.model import Problem, make_problem
from pftlab.theory.simulate import METRICS, client_mean, lp_stability_lambda, onestep_gap_coefficients, run

TIE_RTOL = 1e-9


def gap(ft: float, lpft: float) -> float:
    """ft - lpft with the divergence convention of the module docstring."""
    if np.isfinite(ft) and np.isfinite(lpft):
        return ft - lpft
    if np.isfinite(lpft):
        return np.inf
    if np.isfinite(ft):
        return -np.inf
    return np.nan


def winner(ft: float, lpft: float) -> str:
    g = gap(ft, lpft)
    if np.isnan(g):
        return "both diverged"
    if np.isfinite(g) and abs(g) <= TIE_RTOL * max(abs(ft), abs(lpft), 1e-300):
        return "tie"
    return "lp-ft" if g > 0 else "ft"


def _check_grid(lambdas: Sequence[float], steps: Sequence[int], step_sizes: Sequence[float]) -> None:
    if not lambdas or not steps or not step_sizes:
        raise UserError("give at least one lambda, one step count and one step size")
    if any(not np.isfinite(x) or x < 0 for x in lambdas):
        raise UserError("every lambda must be a finite number >= 0")
    if any(t < 0 for t in steps):
        raise UserError("every step count must be >= 0")
    if any(not np.isfinite(s) or s <= 0 for s in step_sizes):
        raise UserError("every step size must be a finite number > 0")


def sweep(
    setting: str,
    lambdas: Sequence[float],
    steps: Sequence[int],
    step_sizes: Sequence[float],
    eps: float = 0.5,
    d: int = 8,
    m: int = 2,
    C: int = 4,
    *,
    head_norm: float = 1.0,
    seed: int = 0,
) -> list[dict[str, float | int | str]]:
    """One row per (step size, lambda, steps): every metric of both methods (client means) and the gaps."""
    _check_grid(lambdas, steps, step_sizes)
    rows: list[dict[str, float | int | str]] = []
    horizon = max(steps)
    for step in step_sizes:
        for lam in lambdas:
            problem = make_problem(setting, lam, eps, d, m, C, head_norm=head_norm, seed=seed)
            ft = client_mean(problem, "ft", step, horizon)
            lp = client_mean(problem, "lp-ft", step, horizon)
            for t in sorted(set(steps)):
                row: dict[str, float | int | str] = {
                    "setting": setting,
                    "eps": problem.eps if setting == "covariate" else 0.0,
                    "d": d,
                    "m": m,
                    "C": C,
                    "seed": seed,
                    "step_size": step,
                    "lambda": lam,
                    "steps": t,
                }
                metrics: dict[str, float] = {}
                for name in METRICS:
                    metrics[f"{name}_ft"] = float(ft[name][t])
                    metrics[f"{name}_lpft"] = float(lp[name][t])
                row.update(metrics)
                row["gap_global_others"] = gap(metrics["global_others_ft"], metrics["global_others_lpft"])
                row["gap_global_mixture"] = gap(metrics["global_mixture_ft"], metrics["global_mixture_lpft"])
                row["winner"] = winner(metrics["global_others_ft"], metrics["global_others_lpft"])
                rows.append(row)
    return rows


@dataclass
class Threshold:
    """Where LP-FT stops being better, for the client mean and for each client."""

    setting: str
    eps: float
    step: float
    steps: int
    lambdas: np.ndarray  # the grid
    gaps: np.ndarray  # (len(grid),) client-mean gap
    client_gaps: np.ndarray  # (C, len(grid))
    lambda_star: float | None  # end of the LP-FT-better interval that starts at the grid's low end (None: no such)
    crossings: list[float]  # every lambda where "LP-FT better" switches on or off (client mean)
    client_lambda_star: list[float | None]
    client_crossings: list[list[float]]
    onestep_roots: list[float] | None  # steps == 1: positive roots of a2 + a3 lambda + a4 lambda^2 (client mean)
    lp_stability: float  # lambda above which LP-FT's start is unstable for this step (first client)


def _bisect(pred: Callable[[float], bool], lo: float, hi: float, tol: float) -> float:
    """pred(lo) != pred(hi): the switch point to within tol."""
    plo = pred(lo)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if pred(mid) == plo:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _crossings(grid: np.ndarray, better: np.ndarray, pred: Callable[[float], bool], tol: float) -> list[float]:
    return [
        _bisect(pred, float(grid[k]), float(grid[k + 1]), tol)
        for k in range(len(grid) - 1)
        if better[k] != better[k + 1]
    ]


def find_threshold(
    setting: str = "covariate",
    eps: float = 1.0,
    step: float = 0.5,
    steps: int = 1,
    lam_lo: float = 0.02,
    lam_hi: float = 4.0,
    n_grid: int = 200,
    d: int = 8,
    m: int = 2,
    C: int = 4,
    *,
    head_norm: float = 1.0,
    seed: int = 0,
    tol: float = 1e-6,
) -> Threshold:
    """Fine grid over lambda, then bisection on every switch of "LP-FT has the lower global loss" (gap > 0, no tie).

    lambda* is the largest lambda such that LP-FT is better on all of [lam_lo, lambda*]; it is None when LP-FT is not
    better at lam_lo, and lam_hi when it is better on the whole range (no switch found).
    """
    if not (0 < lam_lo < lam_hi) or not np.isfinite(lam_hi):
        raise UserError(f"need 0 < lambda-min < lambda-max (got {lam_lo}, {lam_hi})")
    if n_grid < 2:
        raise UserError(f"the grid needs at least 2 points (got {n_grid})")
    if steps < 1:
        raise UserError(f"the threshold needs steps >= 1 (got {steps})")

    def problem_at(lam: float) -> Problem:
        return make_problem(setting, lam, eps, d=d, m=m, C=C, head_norm=head_norm, seed=seed)

    def client_pair(lam: float, i: int) -> tuple[float, float]:
        problem = problem_at(lam)
        return run(problem, "ft", step, steps, i).global_others[steps], run(
            problem, "lp-ft", step, steps, i
        ).global_others[steps]

    def mean_pair(lam: float) -> tuple[float, float]:
        problem = problem_at(lam)
        ft = client_mean(problem, "ft", step, steps)["global_others"][steps]
        lp = client_mean(problem, "lp-ft", step, steps)["global_others"][steps]
        return float(ft), float(lp)

    def lp_better(pair: tuple[float, float]) -> bool:  # ties (equal to rounding) count as "not better"
        return winner(*pair) == "lp-ft"

    def client_lp_better(i: int) -> Callable[[float], bool]:
        return lambda x: lp_better(client_pair(x, i))

    grid = np.linspace(lam_lo, lam_hi, n_grid)
    mean_pairs = [mean_pair(x) for x in grid]
    client_pairs = [[client_pair(x, i) for x in grid] for i in range(C)]
    gaps = np.array([gap(*q) for q in mean_pairs])
    client_gaps = np.array([[gap(*q) for q in row] for row in client_pairs])

    def star(better: list[bool], crossings: list[float]) -> float | None:
        if not better[0]:
            return None
        return crossings[0] if crossings else float(lam_hi)

    better = [lp_better(q) for q in mean_pairs]
    crossings = _crossings(grid, np.array(better), lambda x: lp_better(mean_pair(x)), tol)
    client_better = [[lp_better(q) for q in row] for row in client_pairs]
    client_crossings = [_crossings(grid, np.array(client_better[i]), client_lp_better(i), tol) for i in range(C)]
    problem = problem_at(1.0)
    roots = None
    if steps == 1:
        a = np.mean([onestep_gap_coefficients(problem, i, step) for i in range(C)], axis=0)
        r = np.roots(a[::-1]) if np.any(a[1:] != 0) else np.array([])
        roots = sorted(float(x.real) for x in r if abs(x.imag) < 1e-9 * max(1.0, abs(x)) and x.real > 0)
    return Threshold(
        setting,
        problem.eps if setting == "covariate" else 0.0,
        step,
        steps,
        grid,
        gaps,
        client_gaps,
        star(better, crossings),
        crossings,
        [star(client_better[i], client_crossings[i]) for i in range(C)],
        client_crossings,
        roots,
        lp_stability_lambda(problem, step),
    )
