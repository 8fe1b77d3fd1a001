"""Federated feature distortion: how far personalization moved the features the head reads.

Per client i, on the test samples of client i (`own`) and of every other client (`others`):
the mean L2 distance between global and personalized features, and linear CKA (Kornblith et
al. 2019) between the two feature matrices (1 = the same up to rotation and scale).
"""

from __future__ import annotations

import torch

KEYS = ("distortion_own", "distortion_others", "cka_own", "cka_others")


def linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    """Linear CKA of two (n, features) matrices, computed in float64."""
    a = a.double() - a.double().mean(0)
    b = b.double() - b.double().mean(0)
    cross = (b.T @ a).norm() ** 2
    norm = (a.T @ a).norm() * (b.T @ b).norm()
    return float(cross / norm) if norm > 0 else 1.0


def distortion(personal: torch.Tensor, global_: torch.Tensor, owner: torch.Tensor, client: int) -> dict[str, float]:
    """The four measures for one client, from features of all pooled test samples."""
    own = owner == client
    dist = (personal - global_).double().norm(dim=1)
    return {
        "distortion_own": float(dist[own].mean()),
        "distortion_others": float(dist[~own].mean()),
        "cka_own": linear_cka(personal[own], global_[own]),
        "cka_others": linear_cka(personal[~own], global_[~own]),
    }


def no_distortion() -> dict[str, float]:
    """What a frozen backbone gives, exactly."""
    return {"distortion_own": 0.0, "distortion_others": 0.0, "cka_own": 1.0, "cka_others": 1.0}
