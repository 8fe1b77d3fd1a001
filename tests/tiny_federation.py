"""A tiny synthetic federation and model for tests/federated and tests/baselines: each test runs in under a second."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pftlab.data.dataset import ClientData, Dataset, FederatedData
from pftlab.models import MLP

CLASSES, DIM = 3, 6


def client_split(rng: np.random.Generator, n: int, skew: int, name: str) -> Dataset:
    """Gaussian blobs per class, mostly of class `skew` (label skew across clients)."""
    p = np.full(CLASSES, 0.2 / (CLASSES - 1))
    p[skew] = 0.8
    y = rng.choice(CLASSES, size=n, p=p)
    centers = np.eye(CLASSES, DIM) * 3
    x = (centers[y] + rng.normal(size=(n, DIM))).astype(np.float32)
    return Dataset(x, y.astype(np.int64), CLASSES, name)


def tiny_federation(num_clients: int = 4, n: int = 40, seed: int = 0) -> FederatedData:
    rng = np.random.default_rng(seed)
    clients = [
        ClientData(i, *(client_split(rng, n, i % CLASSES, s) for s in ("train", "val", "test")))
        for i in range(num_clients)
    ]
    return FederatedData("tiny", clients, CLASSES, (DIM,), f"tiny-{num_clients}-{n}-{seed}")


def tiny_model(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP((DIM,), CLASSES, hidden=8, layers=1)


@pytest.fixture
def fed() -> FederatedData:
    """4 clients of 40 samples, 6 features, 3 classes, each mostly one class."""
    return tiny_federation()


@pytest.fixture
def new_model():
    """A fresh MLP (6 -> 8 -> 3) with the same initial weights every call."""
    return tiny_model
