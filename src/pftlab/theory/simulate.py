"""Exact (population) FT and LP-FT trajectories in the two-layer linear model, in float64.

Losses reported, for the personalized parameters (B_t, V_t) of client i:

* `local`: L_i(B_t, V_t), the loss on client i's own distribution;
* `global_others`: mean over the other clients j != i of L_j(B_t, V_t) (the paper's "Global");
* `global_mixture`: mean over all C clients (i included) of L_j(B_t, V_t), the loss on the
  uniform mixture, i.e. the global distribution;
* `feature_others`: mean over j != i of min_V L_j(B_t, V), the loss another client would get with
  client i's features and a head refitted exactly to itself (feature quality; 0 while B_t = B);
* `distortion`: E_{x ~ client i} ||B_t x - B x||^2 = tr((B_t - B) M_i (B_t - B)^T), the squared
  version of the paper's feature distortion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pftlab.core.errors import UserError
from pftlab.theory.model import Problem, exact_probe, loss_and_grads, make_problem, population_loss

METHODS = ("ft", "lp-ft")
METRICS = ("local", "global_others", "global_mixture", "feature_others", "distortion")


@dataclass
class Trajectory:
    """Entry t of each metric is the state after t gradient steps (for LP-FT: after the probe, then t steps)."""

    method: str
    client: int
    metrics: dict[str, np.ndarray]
    B: np.ndarray
    V: np.ndarray
    diverged: bool = False
    V_probe: np.ndarray | None = field(default=None, repr=False)

    @property
    def local(self) -> np.ndarray:
        return self.metrics["local"]

    @property
    def global_others(self) -> np.ndarray:
        return self.metrics["global_others"]

    @property
    def global_mixture(self) -> np.ndarray:
        return self.metrics["global_mixture"]


def evaluate(problem: Problem, i: int, B: np.ndarray, V: np.ndarray) -> dict[str, float]:
    """Every metric of the module docstring for client i's parameters (B, V)."""
    W = B.T @ V
    per_client = np.array([population_loss(W, problem.moments[j], problem.target(j)) for j in range(problem.C)])
    others = [j for j in range(problem.C) if j != i]
    feature = []
    for j in others:
        Mj, wj = problem.moments[j], problem.target(j)
        feature.append(population_loss(B.T @ exact_probe(B, problem.head(j), Mj, wj), Mj, wj))
    D = B - problem.B
    return {
        "local": float(per_client[i]),
        "global_others": float(per_client[others].mean()),
        "global_mixture": float(per_client.mean()),
        "feature_others": float(np.mean(feature)),
        "distortion": float(np.trace(D @ problem.moments[i] @ D.T)),
    }


def _check(method: str, step: float, steps: int) -> None:
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not np.isfinite(step) or step <= 0:
        raise UserError(f"the step size must be a finite number > 0 (got {step})")
    if steps < 0:
        raise UserError(f"the number of steps must be >= 0 (got {steps})")


def run(problem: Problem, method: str, step: float, steps: int, client: int = 0) -> Trajectory:
    """FT or LP-FT for one client of a built problem: plain gradient descent on L_i(B, V)."""
    _check(method, step, steps)
    if not 0 <= client < problem.C:
        raise UserError(f"client must be in 0..{problem.C - 1} (got {client})")
    M, w_star = problem.moments[client], problem.target(client)
    B, V = problem.start()
    V_probe = None
    if method == "lp-ft":
        V = exact_probe(B, V, M, w_star)
        V_probe = V.copy()
    rows = [evaluate(problem, client, B, V)]
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            if not diverged:
                _, gB, gV = loss_and_grads(B, V, M, w_star)
                B, V = B - step * gB, V - step * gV
                diverged = not (np.isfinite(B).all() and np.isfinite(V).all() and np.abs(B).max() < 1e100)
            rows.append(evaluate(problem, client, B, V) if not diverged else dict.fromkeys(METRICS, np.inf))
    metrics = {name: np.array([r[name] for r in rows]) for name in METRICS}
    return Trajectory(method, client, metrics, B, V, diverged, V_probe)


def simulate(
    setting: str,
    lambda_: float,
    eps: float,
    d: int,
    m: int,
    C: int,
    step: float,
    steps: int,
    method: str,
    *,
    client: int = 0,
    head_norm: float = 1.0,
    seed: int = 0,
) -> Trajectory:
    """Build the problem and run FT or LP-FT for one client; deterministic (no sampling at all)."""
    problem = make_problem(setting, lambda_, eps, d, m, C, head_norm=head_norm, seed=seed)
    return run(problem, method, step, steps, client)


def client_mean(problem: Problem, method: str, step: float, steps: int) -> dict[str, np.ndarray]:
    """Each metric's trajectory averaged over the C clients (each personalizes from the same start)."""
    trajs = [run(problem, method, step, steps, i) for i in range(problem.C)]
    return {name: np.mean([t.metrics[name] for t in trajs], axis=0) for name in METRICS}


@dataclass(frozen=True)
class OneStep:
    """The closed-form first FT step from (B0, V0) for client i."""

    delta_B: np.ndarray
    delta_V: np.ndarray
    W1: np.ndarray


def one_step_formula(problem: Problem, client: int, step: float) -> OneStep:
    """Delta B = step*lambda * V0 (M_i p_i)^T, Delta V = step*lambda * B M_i p_i and
    W1 = c + step*lambda (|V0|^2 I + B^T B) M_i p_i + step^2 lambda^2 (c^T M_i p_i) M_i p_i.

    Under concept shift (M_i = I): shared row r moves by step*lambda*V_com[r] * p_i, private rows
    do not move, Delta V = step*lambda*e_(m+i), W1 = c + step*lambda*(1 + |V_com|^2) p_i.
    """
    eta, lam = step, problem.lambda_
    B0, V0 = problem.start()
    c = B0.T @ V0
    Mp = problem.moments[client] @ problem.private(client)
    W1 = c + eta * lam * (float(V0 @ V0) * Mp + B0.T @ (B0 @ Mp)) + eta**2 * lam**2 * float(c @ Mp) * Mp
    return OneStep(eta * lam * np.outer(V0, Mp), eta * lam * (B0 @ Mp), W1)


def onestep_gap_coefficients(problem: Problem, client: int, step: float) -> np.ndarray:
    """(a2, a3, a4) with global_others(FT, 1 step) - global_others(LP-FT) = lambda^2 (a2 + a3 lambda + a4 lambda^2).

    From W1 - w_j* = lambda (step D - p_j) + step^2 lambda^2 kappa M_i p_i with D = (|V0|^2 I + B^T B) M_i p_i and
    kappa = c^T M_i p_i, while LP-FT sits at w_i* (W - w_j* = lambda (p_i - p_j)); averaged over j != i.
    The coefficients do not depend on the problem's lambda. Concept shift: kappa = 0, a2 = (alpha^2 - 1) / 2 with
    alpha = step (1 + |V_com|^2), a3 = a4 = 0.
    """
    eta = step
    B0, V0 = problem.start()
    c = B0.T @ V0
    Mp = problem.moments[client] @ problem.private(client)
    D = float(V0 @ V0) * Mp + B0.T @ (B0 @ Mp)
    kappa = float(c @ Mp)
    pi = problem.private(client)
    acc = np.zeros(3)
    for j in range(problem.C):
        if j == client:
            continue
        Mj, pj = problem.moments[j], problem.private(j)
        u = eta * D - pj
        acc += [
            (u @ Mj @ u - (pi - pj) @ Mj @ (pi - pj)) / 2,
            eta**2 * kappa * float(u @ Mj @ Mp),
            eta**4 * kappa**2 * float(Mp @ Mj @ Mp) / 2,
        ]
    return acc / (problem.C - 1)


def sharpness(problem: Problem, client: int, B: np.ndarray, V: np.ndarray) -> float:
    """Largest eigenvalue of the Gauss-Newton matrix J^T M_i J of L_i at (B, V), J = d(B^T V)/d(B, V).

    Since J J^T = |V|^2 I + B^T B, it equals the top eigenvalue of (|V|^2 I + B^T B) M_i; at a zero-residual point
    (such as LP-FT's start) it is the Hessian's top eigenvalue, so gradient descent with step > 2 / sharpness cannot
    stay there: any perturbation (rounding, noise) grows by |1 - step * sharpness| per step.
    """
    G = float(V @ V) * np.eye(problem.d) + B.T @ B
    # G M is similar to the symmetric PSD matrix M^(1/2) G M^(1/2): its eigenvalues are real and >= 0.
    return float(np.max(np.linalg.eigvals(G @ problem.moments[client]).real))


def lp_stability_lambda(problem: Problem, step: float, client: int | None = None) -> float:
    """The lambda beyond which LP-FT's start (B, V_i) is an unstable point of gradient descent with this step.

    The sharpness there is the top eigenvalue of ((|V_com|^2 + lambda^2) I + B^T B) M_i, increasing in lambda; the bound
    is where it reaches 2 / step (0 if it already does at lambda = 0). Concept shift: sqrt(2 / step - 1 - |V_com|^2).
    client None: the smallest bound over the clients (the first client whose LP-FT start turns unstable).
    """
    if client is None:
        return min(lp_stability_lambda(problem, step, i) for i in range(problem.C))
    P = problem.B.T @ problem.B
    M = problem.moments[client]
    v2 = float(problem.V_com @ problem.V_com)

    def sharp(lam2: float) -> float:
        return float(np.max(np.linalg.eigvals(((v2 + lam2) * np.eye(problem.d) + P) @ M).real))

    target = 2.0 / step
    if sharp(0.0) >= target:
        return 0.0
    hi = 1.0
    while sharp(hi) < target:
        hi *= 4.0
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if sharp(mid) < target else (lo, mid)
        if hi - lo <= 1e-15 * hi:
            break
    return float(np.sqrt(0.5 * (lo + hi)))


def linear_response_gap(problem: Problem, client: int, step: float, steps: int) -> np.ndarray:
    """G_i(t), t = 0..steps, with global_others(FT, t) - global_others(LP-FT) = lambda^2 G_i(t) + O(lambda^3).

    To first order in lambda the FT residual obeys r_(t+1) = (I - step A) r_t with A = (|V0|^2 I + B^T B) M_i and
    r_0 = -lambda p_i, so W_t = c + lambda q_t with q_t = (I - (I - step A)^t) p_i, while LP-FT sits at c + lambda p_i:
    G_i(t) = mean_(j != i) [(q_t - p_j)^T M_j (q_t - p_j) - (p_i - p_j)^T M_j (p_i - p_j)] / 2.
    Concept shift: A = (1 + |V_com|^2) I and G(t) = ((1 - (1 - alpha)^t)^2 - 1) / 2 with alpha = step (1 + |V_com|^2).
    """
    B0, V0 = problem.start()
    A = float(V0 @ V0) * np.eye(problem.d) + B0.T @ B0
    A = A @ problem.moments[client]
    K = np.eye(problem.d) - step * A
    pi = problem.private(client)
    others = [j for j in range(problem.C) if j != client]
    lp = np.mean([(pi - problem.private(j)) @ problem.moments[j] @ (pi - problem.private(j)) for j in others]) / 2
    out = np.empty(steps + 1)
    rest = pi.copy()  # (I - step A)^t p_i
    for t in range(steps + 1):
        q = pi - rest
        out[t] = np.mean([(q - problem.private(j)) @ problem.moments[j] @ (q - problem.private(j)) for j in others]) / 2
        out[t] -= lp
        rest = K @ rest
    return out
