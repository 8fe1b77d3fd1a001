"""Metrics from the cross-client matrix, per client and then averaged over clients, in percent.

The study's Average column equals (local + global + worst) / 3 in every row although the text
says (local + global) / 2; both are reported, as `average3` and `average`.
"""

from __future__ import annotations

import numpy as np

DEFINITIONS = {
    "local": "A[i, i]: client i's personalized model on its own test set",
    "global": "hits of model i on all other clients' test samples / their number (sample-weighted)",
    "global_balanced": "mean over j != i of A[i, j] (each other client counts once)",
    "worst": "min over j != i of A[i, j]",
    "global_same_domain": "hits of model i on other clients of its own domain / their test samples",
    "global_other_domain": "hits of model i on clients of other domains / their test samples",
    "c_std": "population std over clients of local (ddof = 0)",
    "local_min": "min over clients of local: the worst-off client's own accuracy",
    "global_std": "population std over clients of global_balanced (ddof = 0): how unevenly global accuracy falls",
    "average": "(local + global) / 2, as the study's text defines it",
    "average_balanced": "(local + global_balanced) / 2: the average with the paper's Global (the uniform mixture)",
    "average3": "(local + global + worst) / 3, what the study's table actually reports",
    "distortion_own": "mean L2 distance between global and personalized features on the client's own test samples",
    "distortion_others": "the same on every other client's test samples",
    "cka_own": "linear CKA between global and personalized features on the client's own test samples (1 = same)",
    "cka_others": "the same on every other client's test samples",
}
PER_CLIENT = ("local", "global", "global_balanced", "worst")
DOMAIN_SPLIT = ("global_same_domain", "global_other_domain")


def domain_split(domains: np.ndarray | None) -> bool:
    """Global accuracy is split by domain when several clients share a domain and there is more than one."""
    if domains is None:
        return False
    _, counts = np.unique(domains, return_counts=True)
    return len(counts) > 1 and bool((counts > 1).any())


def accuracy_matrix(correct: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """A[i, j] in percent from hit counts correct[i, j] and test sizes[j]; NaN rows for failed clients (-1)."""
    acc: np.ndarray = 100.0 * correct / sizes[None, :]
    acc[(correct < 0).any(1)] = np.nan
    return acc


def per_client(correct: np.ndarray, sizes: np.ndarray, domains: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-client metrics; with `domains` (a number per client) shared by several clients, global
    accuracy also on the same domain's other clients and on other domains' clients."""
    n = correct.shape[0]
    if correct.shape != (n, n) or sizes.shape != (n,) or n < 2:
        raise ValueError(
            f"need a square matrix over >= 2 clients and one size per client, got {correct.shape}, {sizes.shape}"
        )
    acc = accuracy_matrix(correct, sizes)
    others = ~np.eye(n, dtype=bool)
    other_hits = np.where(others, correct, 0).sum(1).astype(float)
    other_hits[(correct < 0).any(1)] = np.nan
    other_sizes = np.where(others, sizes[None, :], 0).sum(1)
    off = acc[others].reshape(n, n - 1)
    out = {
        "local": np.diag(acc).copy(),
        "global": 100.0 * other_hits / other_sizes,
        "global_balanced": off.mean(1),
        "worst": off.min(1),
    }
    if domain_split(domains):
        assert domains is not None
        same = domains[:, None] == domains[None, :]
        failed = (correct < 0).any(1)
        for name, mask in zip(DOMAIN_SPLIT, (others & same, ~same), strict=True):
            with np.errstate(invalid="ignore", divide="ignore"):
                value = 100.0 * np.where(mask, correct, 0).sum(1) / np.where(mask, sizes[None, :], 0).sum(1)
            value[failed] = np.nan
            out[name] = value
    return out


def summarize(
    correct: np.ndarray, sizes: np.ndarray, digits: int = 4, domains: np.ndarray | None = None
) -> dict[str, float]:
    """Client means; failed clients (rows of -1) are left out, and counted in `failed`. A domain-split
    metric averages the clients it is defined for (those whose domain has another client)."""
    pc = per_client(correct, sizes, domains)
    ok = ~np.isnan(pc["local"])
    if not ok.any():
        raise ValueError("every client failed: there is nothing to summarize")
    out = {k: float(v[ok].mean()) for k, v in pc.items() if k not in DOMAIN_SPLIT}
    out |= {k: float(np.nanmean(pc[k][ok])) for k in DOMAIN_SPLIT if k in pc and not np.isnan(pc[k][ok]).all()}
    out["c_std"] = float(pc["local"][ok].std())
    out["local_min"] = float(pc["local"][ok].min())
    out["global_std"] = float(pc["global_balanced"][ok].std())
    out["average"] = (out["local"] + out["global"]) / 2
    out["average_balanced"] = (out["local"] + out["global_balanced"]) / 2
    out["average3"] = (out["local"] + out["global"] + out["worst"]) / 3
    rounded = {k: round(v, digits) for k, v in out.items()}
    return rounded if ok.all() else {**rounded, "failed": int((~ok).sum())}
