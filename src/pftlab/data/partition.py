"""Seeded partitioners: which samples of a pool go to which client.

Each returns one index array per client. Infeasible requests raise UserError at once, with the
numbers that make them infeasible, instead of resampling forever.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pftlab.core.errors import UserError

DIRICHLET_MAX_DRAWS = 100


def _check_counts(n: int, num_clients: int, min_size: int) -> None:
    if num_clients < 1:
        raise UserError(f"num_clients must be >= 1, got {num_clients}")
    if num_clients * min_size > n:
        raise UserError(
            f"cannot give {num_clients} clients at least {min_size} samples each from {n} samples; "
            f"allowed: num_clients * min_client_size <= {n}"
        )


def iid(labels: np.ndarray, num_clients: int, rng: np.random.Generator, min_size: int = 1) -> list[np.ndarray]:
    """Shuffle, then cut into equal parts (sizes differ by at most one)."""
    _check_counts(len(labels), num_clients, min_size)
    return [np.sort(part) for part in np.array_split(rng.permutation(len(labels)), num_clients)]


def dirichlet(
    labels: np.ndarray,
    num_clients: int,
    alpha: float,
    rng: np.random.Generator,
    min_size: int = 1,
) -> list[np.ndarray]:
    """Label skew: each class is split over clients by proportions drawn from Dir(alpha).

    Small alpha gives each client few classes; large alpha approaches IID. A draw whose smallest
    client has fewer than `min_size` samples is redrawn, at most DIRICHLET_MAX_DRAWS times.
    """
    if not alpha > 0:
        raise UserError(f"dirichlet alpha must be > 0, got {alpha}")
    _check_counts(len(labels), num_clients, min_size)
    classes = np.unique(labels)
    smallest = 0
    for _ in range(DIRICHLET_MAX_DRAWS):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).round().astype(int)
            for client, piece in enumerate(np.split(idx, cuts)):
                parts[client].append(piece)
        clients = [np.sort(np.concatenate(p)) for p in parts]
        smallest = min(len(c) for c in clients)
        if smallest >= min_size:
            return clients
    raise UserError(
        f"dirichlet alpha={alpha} is too small for min_client_size={min_size} with {num_clients} clients "
        f"and {len(labels)} samples: the smallest client had {smallest} samples after "
        f"{DIRICHLET_MAX_DRAWS} draws; raise alpha, lower min_client_size or use fewer clients"
    )


def pathological(
    labels: np.ndarray,
    num_clients: int,
    classes_per_client: int,
    rng: np.random.Generator,
    min_size: int = 1,
) -> list[np.ndarray]:
    """Each client holds exactly `classes_per_client` classes; each class is shared evenly by its holders.

    Classes are dealt from a repeated random permutation, so every class has a holder and a
    client's classes are distinct.
    """
    classes = np.unique(labels)
    k = classes_per_client
    if not 1 <= k <= len(classes):
        raise UserError(f"classes_per_client must be in [1, {len(classes)}], got {k}")
    if num_clients * k < len(classes):
        raise UserError(
            f"{num_clients} clients x {k} classes each cannot cover {len(classes)} classes; "
            f"allowed: num_clients * classes_per_client >= {len(classes)}"
        )
    _check_counts(len(labels), num_clients, min_size)
    deck = np.tile(rng.permutation(classes), -(-num_clients * k // len(classes)))
    holders: dict[Any, list[int]] = {c: [] for c in classes}
    for client in range(num_clients):
        for c in deck[client * k : (client + 1) * k]:
            holders[c].append(client)
    parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        for client, piece in zip(holders[c], np.array_split(idx, len(holders[c])), strict=True):
            parts[client].append(piece)
    clients = [np.sort(np.concatenate(p)) for p in parts]
    smallest = min(len(c) for c in clients)
    if smallest < min_size:
        raise UserError(
            f"pathological partition with {k} classes per client leaves a client with {smallest} samples, "
            f"below min_client_size={min_size}; use fewer clients or more classes per client"
        )
    return clients


def _spread(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """m distinct positions in [0, n) spaced evenly, with a random phase."""
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    return np.floor((np.arange(m) + rng.random()) * n / m).astype(np.int64)


def split_indices(
    indices: np.ndarray,
    labels: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split one client's samples into train / val / test, stratified by label.

    Samples are shuffled and ordered by label; test slots are spread evenly along that order,
    then val slots along what remains, so each class's share of a split is within about one
    sample of its share of the client.
    """
    n = len(indices)
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    order = rng.permutation(indices)
    order = order[np.argsort(labels[order], kind="stable")]
    role = np.zeros(n, dtype=np.int8)
    role[_spread(n, n_test, rng)] = 2
    rest = np.flatnonzero(role == 0)
    role[rest[_spread(len(rest), n_val, rng)]] = 1
    return tuple(np.sort(order[role == r]) for r in (0, 1, 2))  # type: ignore[return-value]
