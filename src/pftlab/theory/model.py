"""The paper's two-layer linear model, made explicit, with exact population losses and gradients.

Construction (our reading of the paper's section "The theory"; every choice is documented in
docs/theory.md):

* inputs x in R^d; a feature extractor B in R^(k x d) with orthonormal rows, k = m + C;
  rows 0..m-1 are the m *shared* features b_1..b_m, row m+i is client i's *private* feature p_i;
* B is a fixed generic frame: the first k rows of an orthogonal matrix from the QR factorisation
  of a Gaussian matrix drawn with `numpy_rng(seed, "theory/B")` (deterministic for a given seed);
* heads: V_com = head_norm * (1, ..., 1) / sqrt(m) in R^m, and client i's true head
  V_i = [V_com ; lambda * e_i] in R^(m + C), so client i's target is the noiseless
  y = V_i^T B x = w_i*^T x with w_i* = B^T V_i = c + lambda * p_i and c = B_com^T V_com;
* setting "concept": every client has x ~ N(0, I_d), so the second moment M_i = E[x x^T] = I;
* setting "covariate": client i has x = e_i + eps * z, z ~ N(0, I_d), e_i the i-th standard basis
  vector of R^d (mean mu_i = e_i, covariance eps^2 I), so M_i = e_i e_i^T + eps^2 I;
* the start ("ideal shared state") is B0 = B (all k rows, the private rows included) and
  V0 = [V_com ; 0].

With W = B^T V the end-to-end linear map, the population loss is exactly
    L(B, V; M, w*) = E[(W^T x - y)^2] / 2 = (W - w*)^T M (W - w*) / 2,
because E[(u^T x)^2] = u^T E[x x^T] u for any fixed u (the mean enters through M).
With g = M (W - w*): dL/dB = V g^T and dL/dV = B g.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pftlab.core.errors import UserError
from pftlab.core.seeding import numpy_rng

SETTINGS = ("concept", "covariate")


@dataclass(frozen=True)
class Problem:
    """One instance of the model: the frame, the heads and every client's second moment."""

    setting: str
    lambda_: float
    eps: float
    d: int
    m: int
    C: int
    B: np.ndarray  # (k, d), orthonormal rows: shared rows first, then one private row per client
    V_com: np.ndarray  # (m,)
    means: np.ndarray  # (C, d): client i's input mean mu_i (zeros under concept shift)
    moments: np.ndarray  # (C, d, d): M_i = E[x x^T] = mu_i mu_i^T + Cov_i

    @property
    def k(self) -> int:
        return self.m + self.C

    @property
    def B_com(self) -> np.ndarray:
        return self.B[: self.m]

    def private(self, i: int) -> np.ndarray:
        """p_i: client i's private feature direction in input space (row m + i of B)."""
        row: np.ndarray = self.B[self.m + i]
        return row

    def head(self, i: int) -> np.ndarray:
        """V_i = [V_com ; lambda e_i]."""
        v = np.zeros(self.k)
        v[: self.m] = self.V_com
        v[self.m + i] = self.lambda_
        return v

    def target(self, i: int) -> np.ndarray:
        """w_i* = B^T V_i = c + lambda p_i."""
        w_star: np.ndarray = self.B.T @ self.head(i)
        return w_star

    def start(self) -> tuple[np.ndarray, np.ndarray]:
        """(B0, V0) = (B, [V_com ; 0]): fresh copies."""
        v0 = np.zeros(self.k)
        v0[: self.m] = self.V_com
        return self.B.copy(), v0


def make_problem(
    setting: str,
    lambda_: float,
    eps: float = 0.5,
    d: int = 8,
    m: int = 2,
    C: int = 4,
    *,
    head_norm: float = 1.0,
    seed: int = 0,
) -> Problem:
    """Build the model; a bad argument raises UserError with a one-line message."""
    if setting not in SETTINGS:
        raise UserError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if m < 1 or C < 2:
        raise UserError(f"need m >= 1 shared features and C >= 2 clients (got m={m}, C={C})")
    if d < m + C:
        raise UserError(f"need d >= m + C = {m + C} so B (k x d) can have orthonormal rows (got d={d})")
    if not np.isfinite(lambda_) or lambda_ < 0:
        raise UserError(f"lambda must be a finite number >= 0 (got {lambda_})")
    if not np.isfinite(eps) or eps < 0:
        raise UserError(f"eps must be a finite number >= 0 (got {eps})")
    rng = numpy_rng(seed, "theory/B", d)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))  # a Haar-distributed orthogonal matrix, fixed by the seed
    B = np.ascontiguousarray(q[: m + C])
    V_com = np.full(m, head_norm / np.sqrt(m))
    if setting == "concept":
        means = np.zeros((C, d))
        moments = np.broadcast_to(np.eye(d), (C, d, d)).copy()
    else:
        means = np.eye(d)[:C].copy()
        moments = np.einsum("ca,cb->cab", means, means) + eps**2 * np.eye(d)
    return Problem(setting, float(lambda_), float(eps), d, m, C, B, V_com, means, moments)


def population_loss(W: np.ndarray, M: np.ndarray, w_star: np.ndarray) -> float:
    """E[(W^T x - w*^T x)^2] / 2 = (W - w*)^T M (W - w*) / 2, with M = E[x x^T]."""
    r = W - w_star
    return 0.5 * float(r @ M @ r)


def loss_and_grads(
    B: np.ndarray, V: np.ndarray, M: np.ndarray, w_star: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """L(B, V), dL/dB = V g^T, dL/dV = B g with g = M (B^T V - w*)."""
    r = B.T @ V - w_star
    g = M @ r
    return 0.5 * float(r @ g), np.outer(V, g), B @ g


def exact_probe(B: np.ndarray, V: np.ndarray, M: np.ndarray, w_star: np.ndarray) -> np.ndarray:
    """Linear probing solved exactly: argmin over V' of L(B, V') closest to V (B untouched).

    The normal equations are (B M B^T) V' = B M w*; we solve for the change from V with the
    minimum-norm least-squares solution, which is also where gradient descent on V alone from V
    converges, and is the unique solution whenever B M B^T is invertible (eps > 0 or concept).
    """
    G = B @ M @ B.T
    rhs = B @ M @ (w_star - B.T @ V)
    delta = np.linalg.lstsq(G, rhs, rcond=None)[0]
    solved: np.ndarray = V + delta
    return solved
